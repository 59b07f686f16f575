"""Holds: all requested seats in one transaction, or none; release on expiry or cancel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from booking.errors import Problem


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


async def create_hold(
    pool: asyncpg.Pool, user_id: int, event_id: int, seat_ids: list[int], hold_seconds: int
) -> Hold:
    """Hold every seat in `seat_ids` for the user, or raise 409 naming the unavailable ones."""
    wanted = sorted(seat_ids)
    async with pool.acquire() as conn, conn.transaction():
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
            raise Problem(
                422, "unknown-seats", f"seats not in event {event_id}: {missing}", seat_ids=missing
            )
        await expire_overdue(conn, wanted)
        taken = await conn.fetch(
            "SELECT seat_id FROM reservation_seats WHERE active AND seat_id = ANY($1::bigint[])"
            " ORDER BY seat_id",
            wanted,
        )
        if taken:
            ids = [r["seat_id"] for r in taken]
            raise Problem(409, "seats-unavailable", f"seats not available: {ids}", seat_ids=ids)
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
            raise Problem(409, "seats-unavailable", "a seat was taken concurrently") from exc
    return Hold(row["id"], event_id, wanted, row["expires_at"], amount)


async def expire_hold(conn: asyncpg.Connection, reservation_id: int) -> bool:
    """Release one hold if it is still held and past expiry. Idempotent."""
    status = await conn.fetchval(
        "UPDATE reservations SET status = 'expired'"
        " WHERE id = $1 AND status = 'held' AND expires_at <= now() RETURNING status",
        reservation_id,
    )
    return status is not None
