-- Bot defence per event (docs/bot-defence.md).
-- pow_difficulty: leading zero bits a queue join's proof of work needs (0 = no PoW); new events
-- get POW_DIFFICULTY from the application, existing ones keep 0.
-- max_seats_per_buyer: seats one buyer may hold or own in the event at once; NULL = the
-- server's MAX_SEATS_PER_BUYER, 0 = no cap.
ALTER TABLE events
    ADD COLUMN pow_difficulty integer NOT NULL DEFAULT 0 CHECK (pow_difficulty BETWEEN 0 AND 32),
    ADD COLUMN max_seats_per_buyer integer CHECK (max_seats_per_buyer BETWEEN 0 AND 100000);

-- The cap counts one buyer's live reservations in one event.
CREATE INDEX reservations_by_event_user ON reservations (event_id, user_id)
    WHERE status IN ('held', 'paid');
