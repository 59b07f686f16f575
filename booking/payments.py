"""Completing a payment: charge the provider, then mark paid + sold in one transaction,
only if the hold is still valid. Runs in the RQ worker; safe to run twice, even at once.

A refund the outcome owes is written down (`refund_due`) in the deciding transaction and done
after it commits; `refunds_owed` lets the sweeper finish any a crashed process left undone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import asyncpg

from booking.provider import PaymentProvider
from booking.statuses import PaymentStatus, ReservationStatus

UNCHANGED: Literal["unchanged"] = "unchanged"


@dataclass(frozen=True)
class PaymentOutcome:
    payment_id: int
    reservation_id: int
    event_id: int
    user_id: int
    status: PaymentStatus | Literal["unchanged"]  # unchanged: settled by an earlier run
    reason: str | None = None
    waiting_room: bool = False  # the event has a waiting room (its slot is freed on success)


async def _hold_state(conn: asyncpg.Connection, reservation_id: int) -> str:
    """'valid', or why the hold can no longer be paid ('expired', 'cancelled', 'paid')."""
    hold = await conn.fetchrow(
        "SELECT status, expires_at > now() AS valid FROM reservations WHERE id = $1 FOR UPDATE",
        reservation_id,
    )
    assert hold is not None
    if hold["status"] == ReservationStatus.HELD and hold["valid"]:
        return "valid"
    lost = (ReservationStatus.HELD, ReservationStatus.EXPIRED)
    return ReservationStatus.EXPIRED if hold["status"] in lost else str(hold["status"])


async def _fail(
    conn: asyncpg.Connection, payment_id: int, reason: str, reference: str | None, refund: bool
) -> bool:
    """Mark a pending payment failed; False if another run settled it first."""
    status = await conn.fetchval(
        "UPDATE payments SET status = 'failed', failure_reason = $2, provider_ref = $3,"
        " refund_due = $4, updated_at = now() WHERE id = $1 AND status = 'pending'"
        " RETURNING status",
        payment_id,
        reason,
        reference,
        refund,
    )
    return status is not None


async def settle_refund(
    conn: asyncpg.Connection, provider: PaymentProvider, payment_id: int
) -> None:
    """Refund what the payment owes (idempotent at the provider) and write down that it is done."""
    await provider.refund(payment_id)
    await conn.execute(
        "UPDATE payments SET refunded_at = now() WHERE id = $1 AND refunded_at IS NULL", payment_id
    )


async def _mark_paid(pool: asyncpg.Pool, payment_id: int, reservation_id: int, ref: str) -> bool:
    """The common case in one statement (one round trip): the payment is still pending and its
    hold still valid -> paid + succeeded. False changes nothing."""
    paid = await pool.fetchval(
        "WITH p AS (SELECT id FROM payments WHERE id = $1 AND status = 'pending' FOR UPDATE),"
        " r AS (UPDATE reservations SET status = 'paid' WHERE id = $2 AND status = 'held'"
        "       AND expires_at > now() AND EXISTS (SELECT 1 FROM p) RETURNING id)"
        " UPDATE payments SET status = 'succeeded', provider_ref = $3, updated_at = now()"
        "  WHERE id = $1 AND EXISTS (SELECT 1 FROM r) RETURNING id",
        payment_id,
        reservation_id,
        ref,
    )
    return paid is not None


async def complete_payment(
    pool: asyncpg.Pool, provider: PaymentProvider, payment_id: int
) -> PaymentOutcome:
    """Settle one pending payment. No connection is held while the provider answers."""
    payment = await pool.fetchrow(
        "SELECT p.id, p.status, p.amount_cents, p.reservation_id, r.event_id, r.user_id,"
        "       r.status = 'held' AND r.expires_at > now() AS payable,"
        "       CASE WHEN r.status IN ('held', 'expired') THEN 'expired' ELSE r.status END"
        "         AS lost_as, e.waiting_room_enabled"
        "  FROM payments p JOIN reservations r ON r.id = p.reservation_id"
        "  JOIN events e ON e.id = r.event_id WHERE p.id = $1",
        payment_id,
    )
    if payment is None:
        raise LookupError(f"no such payment: {payment_id}")
    rid = payment["reservation_id"]
    ids = (payment_id, rid, payment["event_id"], payment["user_id"])
    if payment["status"] != PaymentStatus.PENDING:
        return PaymentOutcome(*ids, status=UNCHANGED)

    if not payment["payable"]:
        # Never charge for seats already lost; refund whatever an earlier run may have charged.
        reason = f"hold {payment['lost_as']} before payment completed; nothing charged or refunded"
        async with pool.acquire() as conn:
            if not await _fail(conn, payment_id, reason, None, refund=True):
                return PaymentOutcome(*ids, status=UNCHANGED)
            await settle_refund(conn, provider, payment_id)
        return PaymentOutcome(*ids, status=PaymentStatus.FAILED, reason=reason)

    charge = await provider.charge(payment_id, payment["amount_cents"])
    if charge.ok and await _mark_paid(pool, payment_id, rid, charge.reference):
        return PaymentOutcome(
            *ids, status=PaymentStatus.SUCCEEDED, waiting_room=payment["waiting_room_enabled"]
        )
    # Not paid at once (declined, the hold lost meanwhile, or settled by another run): decide
    # step by step under the rows' locks.
    async with pool.acquire() as conn:
        async with conn.transaction():
            status = await conn.fetchval(
                "SELECT status FROM payments WHERE id = $1 FOR UPDATE", payment_id
            )
            if status != PaymentStatus.PENDING:
                return PaymentOutcome(*ids, status=UNCHANGED)
            if charge.ok:
                state = await _hold_state(conn, rid)
                if state == "valid":
                    await conn.execute("UPDATE reservations SET status = 'paid' WHERE id = $1", rid)
                    await conn.execute(
                        "UPDATE payments SET status = 'succeeded', provider_ref = $2,"
                        " updated_at = now() WHERE id = $1",
                        payment_id,
                        charge.reference,
                    )
                    return PaymentOutcome(*ids, status=PaymentStatus.SUCCEEDED)
                reason = f"hold {state} before payment completed; charge refunded"
            else:
                reason = charge.reason or "declined"
                # A declined payment stops protecting the hold: it gets its own expiry back.
                await conn.execute(
                    "UPDATE reservations r SET expires_at ="
                    "   greatest(least(r.expires_at, p.hold_expires_at), now())"
                    "  FROM payments p WHERE p.id = $1 AND r.id = p.reservation_id"
                    "   AND r.status = 'held'",
                    payment_id,
                )
            await _fail(conn, payment_id, reason, charge.reference, refund=charge.ok)
        if charge.ok:
            await settle_refund(conn, provider, payment_id)
    return PaymentOutcome(*ids, status=PaymentStatus.FAILED, reason=reason)


async def stranded_payments(conn: asyncpg.Connection, older_than_seconds: float) -> list[int]:
    """Payments still pending after `older_than_seconds`: candidates for a rescue (their job may
    have failed, been abandoned by a dead worker, or been lost with Redis)."""
    rows = await conn.fetch(
        "SELECT id FROM payments WHERE status = 'pending'"
        " AND created_at < now() - make_interval(secs => $1) ORDER BY id LIMIT 1000",
        float(older_than_seconds),
    )
    return [r["id"] for r in rows]


async def refunds_owed(conn: asyncpg.Connection, older_than_seconds: float) -> list[int]:
    """Payments owing a refund not done after `older_than_seconds` (the process died first)."""
    rows = await conn.fetch(
        "SELECT id FROM payments WHERE refund_due AND refunded_at IS NULL"
        " AND updated_at < now() - make_interval(secs => $1) ORDER BY id LIMIT 1000",
        float(older_than_seconds),
    )
    return [r["id"] for r in rows]
