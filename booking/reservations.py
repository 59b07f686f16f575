"""Reservations as their owner sees them: status, payment requests, cancellation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from booking.domain_errors import (
    AlreadyPaid,
    BookingError,
    HoldCancelled,
    HoldExpired,
    IdempotencyKeyReused,
    NotCancellable,
    PaymentInProgress,
    ReservationNotFound,
)
from booking.statuses import PaymentStatus, ReservationStatus


@dataclass(frozen=True)
class PaymentRequest:
    payment_id: int
    reservation_id: int
    status: PaymentStatus
    failure_reason: str | None
    created: bool  # False when the idempotency key had been seen: nothing new was enqueued


async def _own_reservation(conn: asyncpg.Connection, user_id: int, reservation_id: int) -> Any:
    row = await conn.fetchrow(
        "SELECT id, user_id, event_id, status, amount_cents, expires_at, created_at, reference,"
        "       status = 'held' AND expires_at <= now() AS overdue"
        "  FROM reservations WHERE id = $1",
        reservation_id,
    )
    # Another user's reservation is answered exactly like a missing one: no id probing.
    if row is None or row["user_id"] != user_id:
        raise ReservationNotFound(reservation_id)
    return row


async def get_reservation(pool: asyncpg.Pool, user_id: int, reservation_id: int) -> dict[str, Any]:
    # One snapshot for the reservation and its payment: a settlement committing between the two
    # reads would otherwise show a succeeded payment on a reservation still `held`.
    async with (
        pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        row = await _own_reservation(conn, user_id, reservation_id)
        seats = await conn.fetch(
            "SELECT s.id, s.section, s.row_label, s.number, s.price_cents"
            "  FROM reservation_seats rs JOIN seats s ON s.id = rs.seat_id"
            " WHERE rs.reservation_id = $1 ORDER BY s.id",
            reservation_id,
        )
        payment = await conn.fetchrow(
            "SELECT id, status, failure_reason FROM payments WHERE reservation_id = $1"
            " ORDER BY id DESC LIMIT 1",
            reservation_id,
        )
    return {
        "id": row["id"],
        "reference": row["reference"],
        "event_id": row["event_id"],
        # An overdue hold is expired even before the worker or sweeper has written it down.
        "status": ReservationStatus.EXPIRED if row["overdue"] else row["status"],
        "seat_ids": [s["id"] for s in seats],
        "seats": [
            {
                "id": s["id"],
                "section": s["section"],
                "row": s["row_label"],
                "number": s["number"],
                "price": s["price_cents"],
            }
            for s in seats
        ],
        "amount": row["amount_cents"],
        "expires_at": row["expires_at"].isoformat(),
        "created_at": row["created_at"].isoformat(),
        "payment": None
        if payment is None
        else {
            "id": payment["id"],
            "status": payment["status"],
            "failure_reason": payment["failure_reason"],
        },
    }


def _not_payable(row: Any) -> BookingError:
    if row["overdue"] or row["status"] == ReservationStatus.EXPIRED:
        return HoldExpired(row["id"])
    if row["status"] == ReservationStatus.PAID:
        return AlreadyPaid(row["id"])
    return HoldCancelled(row["id"])


async def request_payment(
    pool: asyncpg.Pool,
    user_id: int,
    reservation_id: int,
    idempotency_key: str,
    pending_max_seconds: int = 120,
) -> PaymentRequest:
    """Record a pending payment (once per idempotency key); the worker completes it.

    The new payment keeps its hold: the hold's expiry moves to at least `pending_max_seconds`
    from now, in the same transaction (a declined payment gives it its own expiry back).
    """
    async with pool.acquire() as conn:
        row = await _own_reservation(conn, user_id, reservation_id)
        for _ in range(2):
            existing = await conn.fetchrow(
                "SELECT id, reservation_id, status, failure_reason FROM payments"
                " WHERE user_id = $1 AND idempotency_key = $2",
                user_id,
                idempotency_key,
            )
            if existing is not None:
                if existing["reservation_id"] != reservation_id:
                    raise IdempotencyKeyReused()
                return PaymentRequest(
                    existing["id"],
                    reservation_id,
                    PaymentStatus(existing["status"]),
                    existing["failure_reason"],
                    created=False,
                )
            if row["status"] != ReservationStatus.HELD or row["overdue"]:
                raise _not_payable(row)
            try:
                payment_id = await _insert_payment(
                    conn, user_id, reservation_id, idempotency_key, pending_max_seconds
                )
            except asyncpg.UniqueViolationError as exc:
                raise PaymentInProgress(
                    f"reservation {reservation_id} already has a payment in progress or done"
                ) from exc
            if payment_id is not None:
                return PaymentRequest(
                    payment_id, reservation_id, PaymentStatus.PENDING, None, created=True
                )
            # Lost a race with the same key (or the hold ended meanwhile): read again.
            row = await _own_reservation(conn, user_id, reservation_id)
    raise PaymentInProgress("concurrent payment with the same key")


async def _insert_payment(
    conn: asyncpg.Connection,
    user_id: int,
    reservation_id: int,
    idempotency_key: str,
    pending_max_seconds: int,
) -> int | None:
    """Insert the payment and extend its hold atomically; None if the key was taken meanwhile
    or the hold stopped being payable (the caller reads again and answers accordingly)."""
    async with conn.transaction():
        hold = await conn.fetchrow(
            "SELECT amount_cents, expires_at FROM reservations"
            " WHERE id = $1 AND status = 'held' AND expires_at > now() FOR UPDATE",
            reservation_id,
        )
        if hold is None:
            return None
        payment_id: int | None = await conn.fetchval(
            "INSERT INTO payments"
            " (reservation_id, user_id, idempotency_key, amount_cents, hold_expires_at)"
            " VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (user_id, idempotency_key) DO NOTHING RETURNING id",
            reservation_id,
            user_id,
            idempotency_key,
            hold["amount_cents"],
            hold["expires_at"],
        )
        if payment_id is not None:
            await conn.execute(
                "UPDATE reservations SET expires_at ="
                " greatest(expires_at, now() + make_interval(secs => $2)) WHERE id = $1",
                reservation_id,
                float(pending_max_seconds),
            )
        return payment_id


async def cancel_reservation(
    pool: asyncpg.Pool, user_id: int, reservation_id: int
) -> tuple[dict[str, Any], int | None]:
    """Cancel a hold, or a paid reservation (its payment becomes refunded).

    Returns the reservation and the id of the payment to refund, if any (the refund is owed in
    the database from this commit on: the caller does it, the sweeper if the caller could not).
    """
    async with pool.acquire() as conn, conn.transaction():
        row = await _own_reservation(conn, user_id, reservation_id)
        locked = await conn.fetchrow(
            "SELECT status, status = 'held' AND expires_at <= now() AS overdue"
            "  FROM reservations WHERE id = $1 FOR UPDATE",
            reservation_id,
        )
        assert locked is not None
        cancellable = (ReservationStatus.HELD, ReservationStatus.PAID)
        if locked["status"] not in cancellable or locked["overdue"]:
            state = ReservationStatus.EXPIRED if locked["overdue"] else locked["status"]
            raise NotCancellable(reservation_id, state)
        refund_payment = None
        if locked["status"] == ReservationStatus.PAID:
            refund_payment = await conn.fetchval(
                "UPDATE payments SET status = 'refunded', refund_due = true, updated_at = now()"
                " WHERE reservation_id = $1 AND status = 'succeeded' RETURNING id",
                reservation_id,
            )
        await conn.execute(
            "UPDATE reservations SET status = 'cancelled' WHERE id = $1", reservation_id
        )
    cancelled = {
        "id": row["id"],
        "event_id": row["event_id"],
        "status": ReservationStatus.CANCELLED,
    }
    return cancelled, refund_payment
