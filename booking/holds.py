"""Holds: all requested seats in one transaction, or none; release on expiry or cancel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from booking.domain_errors import BuyerSeatCapReached, SeatsUnavailable, UnknownSeats


@dataclass(frozen=True)
class Hold:
    reservation_id: int
    event_id: int
    seat_ids: list[int]
    expires_at: datetime
    amount_cents: int


async def expire_overdue(conn: asyncpg.Connection, seat_ids: list[int] | None = None) -> list[int]:
    """Mark held reservations past their expiry as expired (optionally only those holding
    `seat_ids`). Idempotent; returns the ids expired now."""
    if seat_ids is None:
        rows = await conn.fetch(
            "UPDATE reservations SET status = 'expired'"
            " WHERE status = 'held' AND expires_at <= now() RETURNING id"
        )
    else:
        rows = await conn.fetch(
            "UPDATE reservations SET status = 'expired'"
            " WHERE status = 'held' AND expires_at <= now() AND id IN ("
            "   SELECT reservation_id FROM reservation_seats"
            "    WHERE active AND seat_id = ANY($1::bigint[])) RETURNING id",
            seat_ids,
        )
    return [r["id"] for r in rows]


async def enforce_buyer_cap(
    conn: asyncpg.Connection, user_id: int, event_id: int, wanted: int, default_cap: int
) -> None:
    """BuyerSeatCapReached if the buyer would hold or own more than the event's cap of seats (its
    max_seats_per_buyer, else `default_cap`; 0 = no cap). Call inside the hold transaction.

    A transaction-scoped advisory lock per (event, buyer) makes a buyer's concurrent holds take
    turns, so each counts the seats the previous one committed: two racing holds cannot both
    fit under the cap. Other buyers never wait on it.
    """
    await conn.execute(
        "SELECT pg_advisory_xact_lock("
        "  hashtextextended('buyer-cap:' || $1::bigint::text || ':' || $2::bigint::text, 0))",
        event_id,
        user_id,
    )
    row = await conn.fetchrow(
        "SELECT coalesce(e.max_seats_per_buyer, $3::int) AS cap,"
        "       (SELECT count(*) FROM reservations r"
        "          JOIN reservation_seats rs ON rs.reservation_id = r.id AND rs.active"
        "         WHERE r.event_id = $1 AND r.user_id = $2"
        "           AND (r.status = 'paid' OR (r.status = 'held' AND r.expires_at > now()))"
        "       ) AS owned"
        "  FROM events e WHERE e.id = $1",
        event_id,
        user_id,
        default_cap,
    )
    if row is None or row["cap"] <= 0:
        return
    cap, owned = int(row["cap"]), int(row["owned"])
    if owned + wanted > cap:
        raise BuyerSeatCapReached(
            f"at most {cap} seats per buyer in event {event_id}: you hold or own {owned},"
            f" asked for {wanted} more",
            cap=cap,
            owned=owned,
        )


async def create_hold(
    pool: asyncpg.Pool,
    user_id: int,
    event_id: int,
    seat_ids: list[int],
    hold_seconds: int,
    max_seats_per_buyer: int = 0,
) -> Hold:
    """Hold every seat in `seat_ids` for the user, or raise SeatsUnavailable naming the taken
    ones, UnknownSeats, or BuyerSeatCapReached when the buyer's seats in the event would exceed
    the cap."""
    wanted = sorted(seat_ids)
    async with pool.acquire() as conn, conn.transaction():
        # Taken before the seat locks, always in this order: no lock-order deadlock.
        await enforce_buyer_cap(conn, user_id, event_id, len(wanted), max_seats_per_buyer)
        # Lock the seat rows in id order: concurrent holds on overlapping seats queue up here
        # instead of deadlocking, and each then sees the others' committed reservations.
        found = await conn.fetch(
            "SELECT id, price_cents FROM seats WHERE event_id = $1 AND id = ANY($2::bigint[])"
            " ORDER BY id FOR UPDATE",
            event_id,
            wanted,
        )
        missing = sorted(set(wanted) - {r["id"] for r in found})
        if missing:
            raise UnknownSeats(f"seats not in event {event_id}: {missing}", seat_ids=missing)
        await expire_overdue(conn, wanted)
        taken = await conn.fetch(
            "SELECT seat_id FROM reservation_seats WHERE active AND seat_id = ANY($1::bigint[])"
            " ORDER BY seat_id",
            wanted,
        )
        if taken:
            ids = [r["seat_id"] for r in taken]
            raise SeatsUnavailable(f"seats not available: {ids}", seat_ids=ids)
        amount = sum(r["price_cents"] for r in found)
        row = await conn.fetchrow(
            "INSERT INTO reservations (user_id, event_id, status, amount_cents, expires_at)"
            " VALUES ($1, $2, 'held', $3, now() + make_interval(secs => $4))"
            " RETURNING id, expires_at",
            user_id,
            event_id,
            amount,
            float(hold_seconds),
        )
        assert row is not None
        try:
            await conn.executemany(
                "INSERT INTO reservation_seats (reservation_id, seat_id) VALUES ($1, $2)",
                [(row["id"], s) for s in wanted],
            )
        except asyncpg.UniqueViolationError as exc:
            # The database's own guard: should the locking above ever be bypassed.
            raise SeatsUnavailable("a seat was taken concurrently") from exc
    return Hold(row["id"], event_id, wanted, row["expires_at"], amount)


async def expire_hold(conn: asyncpg.Connection, reservation_id: int) -> bool:
    """Release one hold if it is still held and past expiry. Idempotent."""
    status = await conn.fetchval(
        "UPDATE reservations SET status = 'expired'"
        " WHERE id = $1 AND status = 'held' AND expires_at <= now() RETURNING status",
        reservation_id,
    )
    return status is not None
