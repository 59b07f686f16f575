-- Several holds in one round trip and one transaction (issue 11: a hold still cost 9 x a bare
-- request of web CPU, most of it the per-hold round trip; and PostgreSQL spent more CPU per
-- hold than the web process, most of it per transaction).
--
-- A web process sends the holds that arrived while its previous batch was in flight together
-- (booking/hold_batch.py). Each request is decided by hold_seats() (006) exactly as alone, one
-- after the other in arrival order, so a later request sees what an earlier one inserted; a
-- refusal still writes nothing. What is shared is the transaction: all commit together.
--
-- Lock order, the same for every transaction that holds seats (so batches never deadlock with
-- each other or with single holds): first every per-buyer cap lock the batch needs, in the
-- order of their keys; then every seat of every request FOR UPDATE in id order; hold_seats()
-- then takes those same locks again, which PostgreSQL grants at once to their holder.
--
-- p_user_ids, p_event_ids and p_counts have one entry per request; p_seat_ids holds the
-- requests' seat ids one after the other (each request's distinct and sorted), p_counts[i] of
-- them for request i. One row per request: its 1-based index and hold_seats()'s row.
CREATE FUNCTION hold_seats_batch(
    p_user_ids bigint[],
    p_event_ids bigint[],
    p_counts integer[],
    p_seat_ids bigint[],
    p_hold_seconds double precision,
    p_default_cap integer
) RETURNS TABLE (
    request integer,
    outcome text,
    reservation_id bigint,
    expires_at timestamptz,
    amount_cents integer,
    seat_ids bigint[],
    cap integer,
    owned integer
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    v_start integer := 1;
    v_lock bigint;
BEGIN
    FOR v_lock IN
        SELECT DISTINCT hashtextextended('buyer-cap:' || q.event_id::text || ':' || q.user_id::text, 0) AS k
          FROM unnest(p_event_ids, p_user_ids) AS q(event_id, user_id)
          JOIN events e ON e.id = q.event_id
         WHERE coalesce(e.max_seats_per_buyer, p_default_cap) > 0
         ORDER BY k
    LOOP
        PERFORM pg_advisory_xact_lock(v_lock);
    END LOOP;
    PERFORM 1 FROM seats WHERE id = ANY(p_seat_ids) ORDER BY id FOR UPDATE;

    FOR i IN 1 .. cardinality(p_user_ids) LOOP
        RETURN QUERY SELECT i, h.* FROM hold_seats(
            p_user_ids[i], p_event_ids[i], p_seat_ids[v_start : v_start + p_counts[i] - 1],
            p_hold_seconds, p_default_cap) h;
        v_start := v_start + p_counts[i];
    END LOOP;
END $$;
