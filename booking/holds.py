"""Holds: all requested seats in one transaction, or none; release on expiry or cancel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from booking.domain_errors import BuyerSeatCapReached, SeatsUnavailable, UnknownSeats
from booking.hold_batch import HoldBatcher, HoldRequest


@dataclass(frozen=True)
class Hold:
    reservation_id: int
    event_id: int
    seat_ids: list[int]
    expires_at: datetime
    amount_cents: int


# PostgreSQL's expires_at is the expiry schedule: the workers release the due holds every
# EXPIRY_SWEEP_INTERVAL_SECONDS through the partial index reservations_overdue (001_schema.sql),
# oldest first, a batch at a time; rows another transaction has locked (a payment extending the
# hold, a hold expiring it lazily) are skipped and decided there or at the next sweep. So a hold
# writes nothing anywhere for its expiry, and a cancel has no schedule entry to remove.
_EXPIRE_DUE = """
UPDATE reservations r SET status = 'expired'
FROM (
    SELECT id FROM reservations
    WHERE status = 'held' AND expires_at <= now()
    ORDER BY expires_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
) due
WHERE r.id = due.id AND r.status = 'held'
RETURNING r.id, r.event_id
"""


async def expire_due(conn: asyncpg.Connection, limit: int) -> list[tuple[int, int]]:
    """Expire up to `limit` held reservations past their expiry (the oldest first); returns
    (reservation id, event id) of each expired now. Idempotent; safe to run concurrently."""
    rows = await conn.fetch(_EXPIRE_DUE, limit)
    return [(int(r["id"]), int(r["event_id"])) for r in rows]


async def expire_overdue(conn: asyncpg.Connection) -> list[int]:
    """Mark every held reservation past its expiry as expired (the sweeper's full pass, unbatched:
    the backstop of the due sweep above; a hold also expires the overdue holds on its own seats
    inside hold_seats). Idempotent; returns the ids expired now."""
    rows = await conn.fetch(
        "UPDATE reservations SET status = 'expired'"
        " WHERE status = 'held' AND expires_at <= now() RETURNING id"
    )
    return [r["id"] for r in rows]


async def create_hold(holds: HoldBatcher, user_id: int, event_id: int, seat_ids: list[int]) -> Hold:
    """Hold every seat in `seat_ids` for the user, or raise SeatsUnavailable naming the taken
    ones, UnknownSeats, or BuyerSeatCapReached when the buyer's seats in the event would exceed
    the event's cap (its max_seats_per_buyer, else the batcher's default; 0 = no cap). One call
    of hold_seats() (migration 006), sent alone or with the process's concurrent holds
    (booking/hold_batch.py)."""
    wanted = sorted(set(seat_ids))  # hold_seats wants them distinct and in lock order
    try:
        row = await holds.hold(HoldRequest(user_id, event_id, wanted))
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
