-- Token revocations (booking/token_revocations.py): a user's tagged bearer tokens
-- (`ft1.<user>.<issued at>.<secret>.<tag>`) are trusted by their tag alone, without a lookup,
-- unless their issue second is at or before the user's `revoked_through`. Every web process
-- keeps a copy of this table, reading it about once a second: a table of the revoked users only,
-- so a read stays small however many users there are.
CREATE TABLE token_revocations (
    user_id          bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    revoked_through  bigint NOT NULL,       -- epoch second: tokens issued then or earlier are revoked
    revoked_at       timestamptz NOT NULL   -- the processes read the rows changed since their last read
);
CREATE INDEX token_revocations_recent ON token_revocations (revoked_at);

-- Any change of a user's token hash revokes every token issued until now, whoever writes it
-- (the rotation route or an operator's SQL). Two changes within one second still revoke the
-- first one's token: the threshold moves on by at least one second, and the token a rotation
-- answers is dated just after it (booking/users.py rotate_token).
CREATE FUNCTION revoke_user_tokens() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.token_hash IS DISTINCT FROM OLD.token_hash THEN
        INSERT INTO token_revocations AS r (user_id, revoked_through, revoked_at)
        VALUES (NEW.id, floor(extract(epoch FROM now()))::bigint, clock_timestamp())
        ON CONFLICT (user_id) DO UPDATE
            SET revoked_through = GREATEST(excluded.revoked_through, r.revoked_through + 1),
                revoked_at = excluded.revoked_at;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_token_hash_changed AFTER UPDATE OF token_hash ON users
    FOR EACH ROW EXECUTE FUNCTION revoke_user_tokens();
