"""RQ job functions. Each runs one asyncio task against PostgreSQL (and Redis for side effects).

All are idempotent: RQ may run a job twice (retry, a worker crash), and the sweeper and the
scheduled expiry job may race for the same hold.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg

from booking.holds import expire_hold, expire_overdue
from booking.payments import complete_payment
from booking.provider import SimulatedProvider
from booking.settings import Settings, load_settings
from workers.side_effects import after_release, after_sale

log = logging.getLogger(__name__)


async def _complete_payment(settings: Settings, payment_id: int) -> dict[str, Any]:
    provider = SimulatedProvider(settings.payment_latency_ms, settings.payment_failure_rate)
    conn = await asyncpg.connect(settings.database_url)
    try:
        outcome = await complete_payment(conn, provider, payment_id)
    finally:
        await conn.close()
    if outcome.status == "succeeded":
        await after_sale(settings, outcome.event_id, outcome.user_id)
    log.info("payment %s: %s %s", payment_id, outcome.status, outcome.reason or "")
    return {"payment_id": payment_id, "status": outcome.status, "reason": outcome.reason}


def complete_payment_job(payment_id: int, trace_carrier: dict[str, str] | None = None) -> Any:
    from booking.tracing import job_span

    settings = load_settings()
    with job_span("complete_payment", trace_carrier or {}, settings):
        return asyncio.run(_complete_payment(settings, payment_id))


async def _expire_hold(settings: Settings, reservation_id: int) -> bool:
    conn = await asyncpg.connect(settings.database_url)
    try:
        released = await expire_hold(conn, reservation_id)
        event_id = await conn.fetchval(
            "SELECT event_id FROM reservations WHERE id = $1", reservation_id
        )
    finally:
        await conn.close()
    if released and event_id is not None:
        await after_release(settings, [int(event_id)])
    return released


def expire_hold_job(reservation_id: int) -> bool:
    return asyncio.run(_expire_hold(load_settings(), reservation_id))


async def _sweep(settings: Settings) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        expired = await expire_overdue(conn)
        events = await conn.fetch(
            "SELECT DISTINCT event_id FROM reservations WHERE id = ANY($1::bigint[])", expired
        )
    finally:
        await conn.close()
    if expired:
        await after_release(settings, [int(r["event_id"]) for r in events])
        log.info("sweeper released %d overdue holds", len(expired))
    return len(expired)


def sweep_overdue_holds_job() -> int:
    return asyncio.run(_sweep(load_settings()))
