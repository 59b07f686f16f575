-- Token revocations (booking/token_revocations.py): a user's tagged bearer tokens
-- (`ft1.<user>.<issued at>.<secret>.<tag>`) are trusted by their tag alone, without a lookup,
-- unless their issue second is at or before the user's `tokens_revoked_through`. Every web
-- process keeps a copy of the revocations, read from here about once a second.

ALTER TABLE users
    ADD COLUMN tokens_revoked_through bigint,   -- epoch second: tokens issued then or earlier are revoked
    ADD COLUMN tokens_revoked_at      timestamptz;  -- when; the processes read changes since their last read

CREATE INDEX users_tokens_revoked_at ON users (tokens_revoked_at)
    WHERE tokens_revoked_at IS NOT NULL;

-- Any change of a user's token hash revokes every token issued until now, whoever writes it
-- (the rotation route or an operator's SQL). Two changes within one second still revoke the
-- first one's token: the threshold moves on by at least one second, and the token a rotation
-- answers is dated just after it (booking/users.py rotate_token).
CREATE FUNCTION revoke_user_tokens() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.token_hash IS DISTINCT FROM OLD.token_hash THEN
        NEW.tokens_revoked_through := GREATEST(
            floor(extract(epoch FROM now()))::bigint,
            COALESCE(OLD.tokens_revoked_through, 0) + 1
        );
        NEW.tokens_revoked_at := clock_timestamp();
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_token_hash_changed BEFORE UPDATE OF token_hash ON users
    FOR EACH ROW EXECUTE FUNCTION revoke_user_tokens();
