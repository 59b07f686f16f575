"""The payment provider behind a small interface; the simulated one has latency and failures.

Both calls are keyed by the payment id, as a real provider's idempotency key: a retried or
rescued job, or two workers racing for one payment, charge at most once and refund at most once.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from booking.db import create_pool
from booking.settings import Settings


@dataclass(frozen=True)
class ChargeResult:
    ok: bool
    reference: str
    reason: str | None = None


class PaymentProvider(Protocol):
    async def charge(self, payment_id: int, amount_cents: int) -> ChargeResult: ...

    async def refund(self, payment_id: int) -> None:
        """Refund the payment's charge if it has one not refunded yet; otherwise a no-op."""
        ...


class SimulatedProvider:
    """Answers after `latency_ms`; declines a `failure_rate` fraction of charges.

    Its ledger is the `provider_charges` table of the database behind `pool` (the provider's own
    records): the first charge of a payment id decides the outcome, later calls replay it.
    """

    def __init__(
        self, pool: asyncpg.Pool, latency_ms: int, failure_rate: float, seed: int | None = None
    ) -> None:
        self.pool = pool
        self.latency_ms = latency_ms
        self.failure_rate = failure_rate
        self._rng = random.Random(seed)

    async def charge(self, payment_id: int, amount_cents: int) -> ChargeResult:
        # The ledger write is part of the provider's latency, not added to it.
        latency = asyncio.sleep(self.latency_ms / 1000)
        row, _ = await asyncio.gather(self._record(payment_id, amount_cents), latency)
        return ChargeResult(row["ok"], row["reference"], row["reason"])

    async def _record(self, payment_id: int, amount_cents: int) -> asyncpg.Record:
        declined = self._rng.random() < self.failure_rate
        # One statement: the first call inserts the charge, any later one only counts an attempt
        # and reads the first outcome back.
        row = await self.pool.fetchrow(
            "INSERT INTO provider_charges (payment_id, amount_cents, ok, reference, reason)"
            " VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (payment_id) DO UPDATE SET attempts = provider_charges.attempts + 1"
            " RETURNING ok, reference, reason",
            payment_id,
            amount_cents,
            not declined,
            f"sim-{payment_id}",
            "card declined (simulated)" if declined else None,
        )
        assert row is not None
        return row

    async def refund(self, payment_id: int) -> None:
        await asyncio.sleep(self.latency_ms / 1000)
        await self.pool.execute(
            "UPDATE provider_charges SET refunded_at = now()"
            " WHERE payment_id = $1 AND ok AND refunded_at IS NULL",
            payment_id,
        )


class BoundedProvider:
    """At most `slots` calls at `provider` at once; the others wait their turn here.

    A worker runs more RQ threads than it has provider slots, so the RQ bookkeeping and the
    database statements of one payment overlap the provider calls of others instead of leaving
    a slot idle between payments (workers/run.py)."""

    def __init__(self, provider: PaymentProvider, slots: int) -> None:
        self.provider = provider
        self.slots = max(1, slots)
        self._free = asyncio.Semaphore(self.slots)

    async def charge(self, payment_id: int, amount_cents: int) -> ChargeResult:
        async with self._free:
            return await self.provider.charge(payment_id, amount_cents)

    async def refund(self, payment_id: int) -> None:
        async with self._free:
            await self.provider.refund(payment_id)


async def open_provider(
    settings: Settings, pool: asyncpg.Pool
) -> tuple[asyncpg.Pool, SimulatedProvider]:
    """The provider and the pool of its ledger (`pool` itself unless PROVIDER_DATABASE_URL)."""
    url = settings.provider_database_url
    ledger = pool if not url or url == settings.database_url else await create_pool(url, 0, 4)
    provider = SimulatedProvider(ledger, settings.payment_latency_ms, settings.payment_failure_rate)
    return ledger, provider
