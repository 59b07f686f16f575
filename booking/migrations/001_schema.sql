-- Core schema. PostgreSQL is the single source of truth; constraints here make
-- double booking impossible even if application code were wrong.

CREATE TABLE users (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email       text NOT NULL CHECK (length(email) BETWEEN 3 AND 320 AND email LIKE '%_@_%'),
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_unique ON users (lower(email));

CREATE TABLE events (
    id                        bigserial PRIMARY KEY,
    name                      text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    venue                     text NOT NULL DEFAULT '',
    starts_at                 timestamptz NOT NULL,
    status                    text NOT NULL DEFAULT 'on_sale'
                              CHECK (status IN ('scheduled', 'on_sale', 'closed')),
    waiting_room_enabled      boolean NOT NULL DEFAULT false,
    admit_per_second          integer NOT NULL DEFAULT 10 CHECK (admit_per_second BETWEEN 1 AND 100000),
    max_active                integer NOT NULL DEFAULT 200 CHECK (max_active BETWEEN 1 AND 1000000),
    admission_window_seconds  integer NOT NULL DEFAULT 600 CHECK (admission_window_seconds BETWEEN 1 AND 86400),
    sale_opens_at             timestamptz,
    created_at                timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE seats (
    id           bigserial PRIMARY KEY,
    event_id     bigint NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    section      text NOT NULL,
    row_label    text NOT NULL,
    number       integer NOT NULL CHECK (number > 0),
    price_cents  integer NOT NULL CHECK (price_cents >= 0),
    UNIQUE (event_id, section, row_label, number)
);
CREATE INDEX seats_by_event ON seats (event_id, id);

CREATE TABLE reservations (
    id            bigserial PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id),
    event_id      bigint NOT NULL REFERENCES events (id),
    status        text NOT NULL DEFAULT 'held'
                  CHECK (status IN ('held', 'paid', 'expired', 'cancelled')),
    amount_cents  integer NOT NULL CHECK (amount_cents >= 0),
    expires_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reservations_by_user ON reservations (user_id, id);
CREATE INDEX reservations_overdue ON reservations (expires_at) WHERE status = 'held';

-- `active` mirrors "the reservation is held or paid" (kept by triggers below);
-- the partial unique index is what makes a seat impossible to hold twice.
CREATE TABLE reservation_seats (
    reservation_id  bigint NOT NULL REFERENCES reservations (id) ON DELETE CASCADE,
    seat_id         bigint NOT NULL REFERENCES seats (id),
    active          boolean NOT NULL DEFAULT true,
    PRIMARY KEY (reservation_id, seat_id)
);
CREATE UNIQUE INDEX one_active_reservation_per_seat ON reservation_seats (seat_id) WHERE active;

CREATE TABLE payments (
    id               bigserial PRIMARY KEY,
    reservation_id   bigint NOT NULL REFERENCES reservations (id),
    user_id          bigint NOT NULL REFERENCES users (id),
    idempotency_key  text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded')),
    amount_cents     integer NOT NULL CHECK (amount_cents >= 0),
    failure_reason   text,
    provider_ref     text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, idempotency_key),
    CHECK ((status = 'failed') = (failure_reason IS NOT NULL))
);
-- At most one payment in flight or completed per reservation: a reservation is never paid twice.
CREATE UNIQUE INDEX one_live_payment_per_reservation ON payments (reservation_id)
    WHERE status IN ('pending', 'succeeded', 'refunded');

-- Allowed reservation status transitions: held -> paid|expired|cancelled, paid -> cancelled (refund).
CREATE FUNCTION reservations_guard_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
        (OLD.status = 'held' AND NEW.status IN ('paid', 'expired', 'cancelled'))
        OR (OLD.status = 'paid' AND NEW.status = 'cancelled')
    ) THEN
        RAISE EXCEPTION 'reservation % cannot go from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.status = 'paid' AND OLD.status = 'held' AND OLD.expires_at <= now() THEN
        RAISE EXCEPTION 'reservation % hold expired before payment', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER reservations_guard_transition BEFORE UPDATE ON reservations
    FOR EACH ROW EXECUTE FUNCTION reservations_guard_transition();

CREATE FUNCTION reservations_sync_seats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE reservation_seats SET active = NEW.status IN ('held', 'paid')
     WHERE reservation_id = NEW.id AND active IS DISTINCT FROM (NEW.status IN ('held', 'paid'));
    RETURN NULL;
END $$;
CREATE TRIGGER reservations_sync_seats AFTER UPDATE OF status ON reservations
    FOR EACH ROW EXECUTE FUNCTION reservations_sync_seats();

CREATE FUNCTION reservation_seats_set_active() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT r.status IN ('held', 'paid') INTO NEW.active FROM reservations r WHERE r.id = NEW.reservation_id;
    RETURN NEW;
END $$;
CREATE TRIGGER reservation_seats_set_active BEFORE INSERT OR UPDATE ON reservation_seats
    FOR EACH ROW EXECUTE FUNCTION reservation_seats_set_active();

-- A seat held by a reservation belongs to that reservation's event.
CREATE FUNCTION reservation_seats_same_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM seats s JOIN reservations r ON r.id = NEW.reservation_id
         WHERE s.id = NEW.seat_id AND s.event_id = r.event_id
    ) THEN
        RAISE EXCEPTION 'seat % is not in the reservation''s event', NEW.seat_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER reservation_seats_same_event BEFORE INSERT ON reservation_seats
    FOR EACH ROW EXECUTE FUNCTION reservation_seats_same_event();
