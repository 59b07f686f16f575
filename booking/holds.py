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


async def expire_overdue(conn: asyncpg.Connection) -> list[int]:
    """Mark every held reservation past its expiry as expired (the sweeper's full pass; a hold
    expires the overdue holds on its own seats inside hold_seats). Idempotent; returns the ids
    expired now."""
    rows = await conn.fetch(
        "UPDATE reservations SET status = 'expired'"
        " WHERE status = 'held' AND expires_at <= now() RETURNING id"
    )
    return [r["id"] for r in rows]


# booking/migrations/006_hold_in_one_call.sql: the cap lock and count, the seat locks in id order,
# the taken check, the overdue expiry and the inserts, in one round trip and one transaction.
_HOLD_SEATS = "SELECT * FROM hold_seats($1, $2, $3::bigint[], $4, $5)"


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
    the event's cap (its max_seats_per_buyer, else `max_seats_per_buyer`; 0 = no cap)."""
    wanted = sorted(set(seat_ids))  # hold_seats wants them distinct and in lock order
    try:
        row = await pool.fetchrow(
            _HOLD_SEATS, user_id, event_id, wanted, float(hold_seconds), max_seats_per_buyer
        )
    except asyncpg.UniqueViolationError as exc:
        # The database's own guard: should the locking in hold_seats ever be bypassed.
        raise SeatsUnavailable("a seat was taken concurrently") from exc
    assert row is not None
    outcome = row["outcome"]
    if outcome == "held":
        return Hold(row["reservation_id"], event_id, wanted, row["expires_at"], row["amount_cents"])
    if outcome == "seats-unavailable":
        taken = list(row["seat_ids"])
        raise SeatsUnavailable(f"seats not available: {taken}", seat_ids=taken)
    if outcome == "unknown-seats":
        missing = list(row["seat_ids"])
        raise UnknownSeats(f"seats not in event {event_id}: {missing}", seat_ids=missing)
    if outcome == "buyer-seat-cap":
        cap, owned = int(row["cap"]), int(row["owned"])
        raise BuyerSeatCapReached(
            f"at most {cap} seats per buyer in event {event_id}: you hold or own {owned},"
            f" asked for {len(wanted)} more",
            cap=cap,
            owned=owned,
        )
    raise AssertionError(f"hold_seats answered an unknown outcome: {outcome!r}")


async def expire_hold(conn: asyncpg.Connection, reservation_id: int) -> bool:
    """Release one hold if it is still held and past expiry. Idempotent."""
    status = await conn.fetchval(
        "UPDATE reservations SET status = 'expired'"
        " WHERE id = $1 AND status = 'held' AND expires_at <= now() RETURNING status",
        reservation_id,
    )
    return status is not None
