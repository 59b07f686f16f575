"""Settling a payment against the real database and the simulated provider's ledger: a decline
gives the hold its own expiry back, a lost hold is never charged, two runs at once charge once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import asyncpg

from booking.payments import complete_payment
from booking.provider import BoundedProvider, ChargeResult, SimulatedProvider
from booking.reservations import request_payment


async def held_reservation(db: asyncpg.Pool, hold_seconds: float = 60) -> tuple[int, int]:
    """(user id, reservation id) of a fresh one-seat hold."""
    async with db.acquire() as conn, conn.transaction():
        user = await conn.fetchval(
            "INSERT INTO users (name, email, token_hash) VALUES ('S', $1, $2) RETURNING id",
            f"s.{uuid.uuid4().hex}@example.com",
            uuid.uuid4().bytes,
        )
        event = await conn.fetchval(
            "INSERT INTO events (name, starts_at) VALUES ('Settle', now()) RETURNING id"
        )
        seat = await conn.fetchval(
            "INSERT INTO seats (event_id, section, row_label, number, price_cents)"
            " VALUES ($1, 'A', '1', 1, 700) RETURNING id",
            event,
        )
        rid = await conn.fetchval(
            "INSERT INTO reservations (user_id, event_id, amount_cents, expires_at)"
            " VALUES ($1, $2, 700, now() + make_interval(secs => $3)) RETURNING id",
            user,
            event,
            float(hold_seconds),
        )
        await conn.execute(
            "INSERT INTO reservation_seats (reservation_id, seat_id) VALUES ($1, $2)", rid, seat
        )
    return user, rid


async def expiry(db: asyncpg.Pool, rid: int) -> datetime:
    value: datetime = await db.fetchval("SELECT expires_at FROM reservations WHERE id = $1", rid)
    return value


async def test_payment_extends_hold_and_decline_restores_it(db: asyncpg.Pool) -> None:
    user, rid = await held_reservation(db, hold_seconds=60)
    own = await expiry(db, rid)
    payment = await request_payment(db, user, rid, "k", pending_max_seconds=600)
    assert (await expiry(db, rid) - own).total_seconds() > 500  # kept while pending
    outcome = await complete_payment(
        db, SimulatedProvider(db, 0, failure_rate=1.0), payment.payment_id
    )
    assert outcome.status == "failed"
    assert await expiry(db, rid) == own  # back to its own expiry
    row = await db.fetchrow(
        "SELECT ok, attempts FROM provider_charges WHERE payment_id = $1", payment.payment_id
    )
    assert row is not None and not row["ok"]
    refund_due = await db.fetchval(
        "SELECT refund_due FROM payments WHERE id = $1", payment.payment_id
    )
    assert refund_due is False  # nothing was charged


async def test_lost_hold_is_not_charged(db: asyncpg.Pool) -> None:
    user, rid = await held_reservation(db)
    payment = await request_payment(db, user, rid, "k", pending_max_seconds=60)
    await db.execute("UPDATE reservations SET status = 'cancelled' WHERE id = $1", rid)
    outcome = await complete_payment(db, SimulatedProvider(db, 0, 0.0), payment.payment_id)
    assert outcome.status == "failed" and "cancelled" in (outcome.reason or "")
    charged = await db.fetchval(
        "SELECT count(*) FROM provider_charges WHERE payment_id = $1", payment.payment_id
    )
    assert charged == 0


async def test_two_runs_at_once_charge_once_and_pay_once(db: asyncpg.Pool) -> None:
    user, rid = await held_reservation(db)
    payment = await request_payment(db, user, rid, "k", pending_max_seconds=60)
    provider = SimulatedProvider(db, 50, 0.0)
    outcomes = await asyncio.gather(
        *(complete_payment(db, provider, payment.payment_id) for _ in range(4))
    )
    assert sorted(o.status for o in outcomes) == [
        "succeeded",
        "unchanged",
        "unchanged",
        "unchanged",
    ]
    row = await db.fetchrow(
        "SELECT count(*) AS charges, max(attempts) AS attempts FROM provider_charges"
        " WHERE payment_id = $1",
        payment.payment_id,
    )
    assert row is not None and row["charges"] == 1 and row["attempts"] == 4
    assert await db.fetchval("SELECT status FROM reservations WHERE id = $1", rid) == "paid"


class _CountingProvider:
    """Wraps the real simulated provider to record how many calls are inside it at once."""

    def __init__(self, inner: SimulatedProvider, entered: asyncio.Event, reached: int) -> None:
        self.inner = inner
        self.inside = 0
        self.most = 0
        self._entered = entered
        self._reached = reached

    async def charge(self, payment_id: int, amount_cents: int) -> ChargeResult:
        self.inside += 1
        self.most = max(self.most, self.inside)
        if self.inside >= self._reached:
            self._entered.set()
        try:
            await self._entered.wait()  # the first calls wait for each other: the slots fill
            return await self.inner.charge(payment_id, amount_cents)
        finally:
            self.inside -= 1

    async def refund(self, payment_id: int) -> None:
        await self.inner.refund(payment_id)


async def test_bounded_provider_lets_n_charges_in_at_once_and_settles_all(
    db: asyncpg.Pool,
) -> None:
    # The worker runs 2 x PAYMENT_CONCURRENCY RQ threads; the provider sees N at once.
    slots = 2
    payments = []
    for _ in range(6):
        user, rid = await held_reservation(db)
        payments.append((await request_payment(db, user, rid, "k", 60)).payment_id)
    full = asyncio.Event()
    counting = _CountingProvider(SimulatedProvider(db, 50, 0.0), full, slots)
    bounded = BoundedProvider(counting, slots)
    outcomes = await asyncio.gather(*(complete_payment(db, bounded, p) for p in payments))
    assert full.is_set()  # the slots were all used ...
    assert counting.most == slots  # ... and never more than them
    assert [o.status for o in outcomes] == ["succeeded"] * len(payments)
    charges = await db.fetchval(
        "SELECT count(*) FROM provider_charges WHERE payment_id = ANY($1) AND attempts = 1",
        payments,
    )
    assert charges == len(payments)
