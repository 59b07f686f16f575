-- The buyer's journey: browser sessions (one identity across pages and tabs) and a human
-- booking reference on every reservation.

-- A browser session: the cookie carries a random token; only its SHA-256 is stored, as for
-- bearer tokens. Signing out deletes the row, so a copied cookie stops working at once.
CREATE TABLE web_sessions (
    token_hash  bytea PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX web_sessions_by_user ON web_sessions (user_id);
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);

-- Booking references: 8 characters from an alphabet without look-alikes (no 0/O, 1/I/L),
-- drawn from gen_random_uuid()'s random bytes (not its fixed version/variant bytes 6 and 8).
CREATE FUNCTION new_booking_reference() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    alphabet CONSTANT text := '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
    raw bytea;
    ref text;
BEGIN
    LOOP
        raw := uuid_send(gen_random_uuid());
        ref := '';
        FOR i IN 0..7 LOOP
            ref := ref || substr(alphabet,
                                 1 + get_byte(raw, CASE WHEN i < 6 THEN i ELSE i + 3 END) % 31, 1);
        END LOOP;
        -- 31^8 ≈ 8.5e11 references: a clash is rare, but a unique one is cheap to guarantee.
        EXIT WHEN NOT EXISTS (SELECT 1 FROM reservations WHERE reference = ref);
    END LOOP;
    RETURN ref;
END $$;

ALTER TABLE reservations ADD COLUMN reference text;
UPDATE reservations SET reference = new_booking_reference() WHERE reference IS NULL;
ALTER TABLE reservations ALTER COLUMN reference SET DEFAULT new_booking_reference();
ALTER TABLE reservations ALTER COLUMN reference SET NOT NULL;
ALTER TABLE reservations ADD CONSTRAINT reservations_reference_unique UNIQUE (reference);
ALTER TABLE reservations ADD CONSTRAINT reservations_reference_format
    CHECK (reference ~ '^[2-9A-HJKMNP-Z]{8}$');
