"""The payment provider behind a small interface; the simulated one has latency and failures."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ChargeResult:
    ok: bool
    reference: str
    reason: str | None = None


class PaymentProvider(Protocol):
    async def charge(self, payment_id: int, amount_cents: int) -> ChargeResult: ...

    async def refund(self, reference: str) -> None: ...


class SimulatedProvider:
    """Answers after `latency_ms`; declines a `failure_rate` fraction of charges.

    Charges are idempotent per payment id, like a real provider's idempotency key:
    a retried job never charges twice.
    """

    def __init__(self, latency_ms: int, failure_rate: float, seed: int | None = None) -> None:
        self.latency_ms = latency_ms
        self.failure_rate = failure_rate
        self._rng = random.Random(seed)
        self._charged: dict[int, ChargeResult] = {}
        self.refunded: list[str] = []

    async def charge(self, payment_id: int, amount_cents: int) -> ChargeResult:
        if payment_id in self._charged:
            return self._charged[payment_id]
        await asyncio.sleep(self.latency_ms / 1000)
        if self._rng.random() < self.failure_rate:
            result = ChargeResult(False, f"sim-{payment_id}", "card declined (simulated)")
        else:
            result = ChargeResult(True, f"sim-{payment_id}")
        self._charged[payment_id] = result
        return result

    async def refund(self, reference: str) -> None:
        await asyncio.sleep(self.latency_ms / 1000)
        self.refunded.append(reference)
