-- Operator controls (issue 15): a pause flag per waiting room, operators with their own
-- credentials, and the record of every operator action.

-- The admission script reads the pause from Redis (wr:{event}:paused); this column is the
-- durable copy the admin API writes in the same request, shown by the event and room APIs.
ALTER TABLE events ADD COLUMN waiting_room_paused boolean NOT NULL DEFAULT false;

CREATE TABLE operators (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    token_hash  bytea NOT NULL UNIQUE,  -- SHA-256 of a 256-bit random token, as users.token_hash
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE operator_actions (
    id        bigserial PRIMARY KEY,
    operator  text NOT NULL,           -- operators.name, or 'admin-token' for the bootstrap token
    at        timestamptz NOT NULL DEFAULT now(),
    action    text NOT NULL,           -- e.g. room.update, room.pause, event.status, operator.create
    event_id  bigint REFERENCES events (id) ON DELETE SET NULL,
    before    jsonb,
    after     jsonb
);
CREATE INDEX operator_actions_recent ON operator_actions (at DESC, id DESC);
