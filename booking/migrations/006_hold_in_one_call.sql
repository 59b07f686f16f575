-- A seat hold in one round trip (issue 11: a hold cost 18 x a bare request of web CPU).
--
-- Why: the hold used to send ~9 statements plus BEGIN and COMMIT from Python (cap lock, cap
-- count, seat locks, overdue expiry, taken check, two inserts), each a network round trip that
-- costs the web process more CPU than the statement costs PostgreSQL. This function does the
-- same steps, in the same order and under the same locks, inside PostgreSQL; the web process
-- sends one `SELECT * FROM hold_seats(...)` (its own implicit transaction) and turns the outcome
-- row into the same domain errors (booking/holds.py).
--
-- Guarantees, unchanged:
-- * the per-buyer cap: a transaction-scoped advisory lock per (event, buyer), taken before any
--   seat lock (one lock order: no deadlock), makes one buyer's concurrent holds take turns, so
--   each counts the seats the previous one committed;
-- * seats are locked FOR UPDATE in id order (LockRows above the Sort), so overlapping holds
--   queue instead of deadlocking and each then sees the others' committed reservations;
-- * all or nothing: a refusal returns before anything is written. Overdue holds on the seats
--   are expired only once no live hold or sale is in the way (one exception: a payment that
--   extended such a hold between the check and the expiry; then that expiry of other overdue
--   holds is kept - it is true, the sweeper would write the same);
-- * one_active_reservation_per_seat stays the last guard: its unique violation propagates and
--   the caller answers seats-unavailable, as before.
--
-- outcome: 'held' (reservation_id, expires_at, amount_cents), 'unknown-seats' (seat_ids: the
-- ids not in the event), 'seats-unavailable' (seat_ids: the taken ones) or 'buyer-seat-cap'
-- (cap, owned). p_seat_ids must be distinct and sorted (the caller sorts them).
CREATE FUNCTION hold_seats(
    p_user_id bigint,
    p_event_id bigint,
    p_seat_ids bigint[],
    p_hold_seconds double precision,
    p_default_cap integer
) RETURNS TABLE (
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
    v_cap integer;
    v_owned integer;
    v_found bigint[];
    v_amount bigint;
    v_taken bigint[];
    v_id bigint;
    v_expires timestamptz;
BEGIN
    SELECT coalesce(e.max_seats_per_buyer, p_default_cap) INTO v_cap
      FROM events e WHERE e.id = p_event_id;
    IF v_cap > 0 THEN
        PERFORM pg_advisory_xact_lock(
            hashtextextended('buyer-cap:' || p_event_id::text || ':' || p_user_id::text, 0));
        SELECT count(*) INTO v_owned
          FROM reservations r
          JOIN reservation_seats rs ON rs.reservation_id = r.id AND rs.active
         WHERE r.event_id = p_event_id AND r.user_id = p_user_id
           AND (r.status = 'paid' OR (r.status = 'held' AND r.expires_at > now()));
        IF v_owned + cardinality(p_seat_ids) > v_cap THEN
            RETURN QUERY SELECT 'buyer-seat-cap'::text, NULL::bigint, NULL::timestamptz,
                NULL::integer, NULL::bigint[], v_cap, v_owned;
            RETURN;
        END IF;
    END IF;

    SELECT array_agg(s.id ORDER BY s.id), sum(s.price_cents) INTO v_found, v_amount
      FROM (SELECT id, price_cents FROM seats
             WHERE event_id = p_event_id AND id = ANY(p_seat_ids)
             ORDER BY id FOR UPDATE) s;
    IF coalesce(cardinality(v_found), 0) < cardinality(p_seat_ids) THEN
        RETURN QUERY SELECT 'unknown-seats'::text, NULL::bigint, NULL::timestamptz,
            NULL::integer,
            ARRAY(SELECT w FROM unnest(p_seat_ids) w
                   WHERE w <> ALL(coalesce(v_found, '{}'::bigint[])) ORDER BY w),
            NULL::integer, NULL::integer;
        RETURN;
    END IF;

    -- Taken by a live hold or a sale: refuse before writing anything.
    SELECT array_agg(rs.seat_id ORDER BY rs.seat_id) INTO v_taken
      FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
     WHERE rs.active AND rs.seat_id = ANY(p_seat_ids)
       AND NOT (r.status = 'held' AND r.expires_at <= now());
    IF v_taken IS NOT NULL THEN
        RETURN QUERY SELECT 'seats-unavailable'::text, NULL::bigint, NULL::timestamptz,
            NULL::integer, v_taken, NULL::integer, NULL::integer;
        RETURN;
    END IF;

    -- Only overdue holds are left on these seats: release them (the sweeper would too) ...
    UPDATE reservations r SET status = 'expired'
     WHERE r.status = 'held' AND r.expires_at <= now() AND r.id IN (
           SELECT rs.reservation_id FROM reservation_seats rs
            WHERE rs.active AND rs.seat_id = ANY(p_seat_ids));
    -- ... and check again: a payment may have extended one of them since the read above (the
    -- UPDATE re-checks each row it waited for and skips it then).
    SELECT array_agg(rs.seat_id ORDER BY rs.seat_id) INTO v_taken
      FROM reservation_seats rs WHERE rs.active AND rs.seat_id = ANY(p_seat_ids);
    IF v_taken IS NOT NULL THEN
        RETURN QUERY SELECT 'seats-unavailable'::text, NULL::bigint, NULL::timestamptz,
            NULL::integer, v_taken, NULL::integer, NULL::integer;
        RETURN;
    END IF;

    INSERT INTO reservations (user_id, event_id, status, amount_cents, expires_at)
    VALUES (p_user_id, p_event_id, 'held', v_amount,
            now() + make_interval(secs => p_hold_seconds))
    RETURNING id, reservations.expires_at INTO v_id, v_expires;
    INSERT INTO reservation_seats (reservation_id, seat_id)
    SELECT v_id, s FROM unnest(p_seat_ids) s;

    RETURN QUERY SELECT 'held'::text, v_id, v_expires, v_amount::integer, p_seat_ids,
        NULL::integer, NULL::integer;
END $$;
