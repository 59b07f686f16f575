-- hold_seats() (006) without two of its statements in the usual case (issue 11: PostgreSQL
-- spent more CPU per hold than the web process, and a hold waits on it).
--
-- 006 always ran the overdue-hold expiry UPDATE and the taken check after it, even for seats
-- nobody had ever held. Now the first taken check also counts the reservations still on the
-- seats; with none, the hold inserts at once. That is safe because nothing can put a
-- reservation on a seat without its row lock, which this transaction holds from the seat
-- SELECT ... FOR UPDATE to its commit, and no status change makes a reservation active again.
-- With overdue holds on the seats the steps are 006's, unchanged. Same arguments, same rows.
CREATE OR REPLACE FUNCTION hold_seats(
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
    v_on_seats integer;
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

    -- Taken by a live hold or a sale: refuse before writing anything. Counted too: every
    -- reservation still on these seats (live, or an overdue hold not yet swept).
    SELECT array_agg(rs.seat_id ORDER BY rs.seat_id)
               FILTER (WHERE NOT (r.status = 'held' AND r.expires_at <= now())),
           count(*)
      INTO v_taken, v_on_seats
      FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
     WHERE rs.active AND rs.seat_id = ANY(p_seat_ids);
    IF v_taken IS NOT NULL THEN
        RETURN QUERY SELECT 'seats-unavailable'::text, NULL::bigint, NULL::timestamptz,
            NULL::integer, v_taken, NULL::integer, NULL::integer;
        RETURN;
    END IF;

    -- Only overdue holds are left on these seats, if any: release them (the sweeper would
    -- too) ... With none (the usual case) there is nothing to release and nothing to re-check:
    -- no reservation can come onto these seats while this transaction holds their locks.
    IF v_on_seats > 0 THEN
        UPDATE reservations r SET status = 'expired'
         WHERE r.status = 'held' AND r.expires_at <= now() AND r.id IN (
               SELECT rs.reservation_id FROM reservation_seats rs
                WHERE rs.active AND rs.seat_id = ANY(p_seat_ids));
        -- ... and check again: a payment may have extended one of them since the read above
        -- (the UPDATE re-checks each row it waited for and skips it then).
        SELECT array_agg(rs.seat_id ORDER BY rs.seat_id) INTO v_taken
          FROM reservation_seats rs WHERE rs.active AND rs.seat_id = ANY(p_seat_ids);
        IF v_taken IS NOT NULL THEN
            RETURN QUERY SELECT 'seats-unavailable'::text, NULL::bigint, NULL::timestamptz,
                NULL::integer, v_taken, NULL::integer, NULL::integer;
            RETURN;
        END IF;
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
