"""Completing a payment: charge the provider, then mark paid + sold in one transaction,
only if the hold is still valid. Runs in the RQ worker; safe to run twice."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from booking.provider import PaymentProvider


@dataclass(frozen=True)
class PaymentOutcome:
    payment_id: int
    reservation_id: int
    event_id: int
    user_id: int
    status: str  # succeeded | failed | unchanged (already settled by an earlier run)
    reason: str | None = None


async def complete_payment(
    conn: asyncpg.Connection, provider: PaymentProvider, payment_id: int
) -> PaymentOutcome:
    payment = await conn.fetchrow(
        "SELECT p.id, p.status, p.amount_cents, p.reservation_id, r.event_id, r.user_id"
        "  FROM payments p JOIN reservations r ON r.id = p.reservation_id WHERE p.id = $1",
        payment_id,
    )
    if payment is None:
        raise LookupError(f"no such payment: {payment_id}")
    ids = (payment_id, payment["reservation_id"], payment["event_id"], payment["user_id"])
    if payment["status"] != "pending":
        return PaymentOutcome(*ids, status="unchanged")

    # The provider call happens outside the transaction: no row lock is held during its latency.
    charge = await provider.charge(payment_id, payment["amount_cents"])
    refund_ref: str | None = None
    async with conn.transaction():
        status = await conn.fetchval(
            "SELECT status FROM payments WHERE id = $1 FOR UPDATE", payment_id
        )
        if status != "pending":
            return PaymentOutcome(*ids, status="unchanged")
        if not charge.ok:
            reason = charge.reason or "declined"
        else:
            hold = await conn.fetchrow(
                "SELECT status, expires_at > now() AS valid FROM reservations"
                " WHERE id = $1 FOR UPDATE",
                payment["reservation_id"],
            )
            assert hold is not None
            if hold["status"] == "held" and hold["valid"]:
                await conn.execute(
                    "UPDATE reservations SET status = 'paid' WHERE id = $1",
                    payment["reservation_id"],
                )
                await conn.execute(
                    "UPDATE payments SET status = 'succeeded', provider_ref = $2,"
                    " updated_at = now() WHERE id = $1",
                    payment_id,
                    charge.reference,
                )
                return PaymentOutcome(*ids, status="succeeded")
            state = "expired" if hold["status"] in ("held", "expired") else hold["status"]
            reason = f"hold {state} before payment completed; charge refunded"
            refund_ref = charge.reference
        await conn.execute(
            "UPDATE payments SET status = 'failed', failure_reason = $2, provider_ref = $3,"
            " updated_at = now() WHERE id = $1",
            payment_id,
            reason,
            charge.reference,
        )
    if refund_ref is not None:
        await provider.refund(refund_ref)
    return PaymentOutcome(*ids, status="failed", reason=reason)


async def stranded_payments(conn: asyncpg.Connection, older_than_seconds: float) -> list[int]:
    """Payments still pending after `older_than_seconds`: their job may have been lost with
    Redis (PostgreSQL keeps the truth, Redis only the job), so the sweeper enqueues them again."""
    rows = await conn.fetch(
        "SELECT id FROM payments WHERE status = 'pending'"
        " AND created_at < now() - make_interval(secs => $1) ORDER BY id LIMIT 1000",
        float(older_than_seconds),
    )
    return [r["id"] for r in rows]
