"""RQ job functions. Each runs one asyncio task against PostgreSQL (and Redis for side effects).

All are idempotent: RQ may run a job twice (retry, a worker crash), and the sweeper and the
scheduled expiry job may race for the same hold.

Metrics are recorded in the worker process itself (workers/run.py runs an rq SimpleWorker, no
fork per job, and serves them on WORKER_METRICS_PORT): rq_job_duration_seconds for every job,
payment_outcomes_total / payment_job_seconds, holds_expired_total{by=job|sweeper}.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from rq.job import Job

from booking import metrics
from booking.holds import expire_hold, expire_overdue
from booking.payments import complete_payment, stranded_payments
from booking.provider import SimulatedProvider
from booking.settings import Settings, load_settings
from workers.queue import JobQueue, payment_job_id
from workers.side_effects import after_release, after_sale

log = logging.getLogger(__name__)


@contextmanager
def _timed(job: str) -> Iterator[None]:
    """Observe the job's duration in rq_job_duration_seconds{job, status=ok|error}."""
    started = time.perf_counter()
    status = "error"
    try:
        yield
        status = "ok"
    finally:
        metrics.RQ_JOB_DURATION.labels(job, status).observe(time.perf_counter() - started)


async def _connect(settings: Settings) -> asyncpg.Connection:
    conn = await asyncpg.connect(settings.database_url)
    await metrics.instrument_connection(conn)
    return conn


async def _complete_payment(settings: Settings, payment_id: int) -> dict[str, Any]:
    provider = SimulatedProvider(settings.payment_latency_ms, settings.payment_failure_rate)
    started = time.perf_counter()
    conn = await _connect(settings)
    try:
        outcome = await complete_payment(conn, provider, payment_id)
        metrics.PAYMENT_LATENCY.observe(time.perf_counter() - started)
        metrics.PAYMENT_OUTCOMES.labels(outcome.status).inc()
        if outcome.status == "succeeded":
            await after_sale(settings, conn, outcome.event_id, outcome.user_id)
    finally:
        await conn.close()
    log.info("payment %s: %s %s", payment_id, outcome.status, outcome.reason or "")
    return {"payment_id": payment_id, "status": outcome.status, "reason": outcome.reason}


def complete_payment_job(payment_id: int, trace_carrier: dict[str, str] | None = None) -> Any:
    from booking.tracing import job_span

    settings = load_settings()
    with _timed("complete_payment"), job_span("complete_payment", trace_carrier or {}, settings):
        return asyncio.run(_complete_payment(settings, payment_id))


async def _expire_hold(settings: Settings, reservation_id: int) -> bool:
    conn = await _connect(settings)
    try:
        released = await expire_hold(conn, reservation_id)
        event_id = await conn.fetchval(
            "SELECT event_id FROM reservations WHERE id = $1", reservation_id
        )
    finally:
        await conn.close()
    if released:
        metrics.HOLDS_EXPIRED.labels("job").inc()
    if released and event_id is not None:
        await after_release(settings, [int(event_id)])
    return released


def expire_hold_job(reservation_id: int) -> bool:
    with _timed("expire_hold"):
        return asyncio.run(_expire_hold(load_settings(), reservation_id))


async def _sweep(settings: Settings) -> tuple[int, list[int]]:
    """Expire overdue holds; return how many, and the payments left pending too long."""
    conn = await _connect(settings)
    try:
        expired = await expire_overdue(conn)
        events = await conn.fetch(
            "SELECT DISTINCT event_id FROM reservations WHERE id = ANY($1::bigint[])", expired
        )
        stranded = await stranded_payments(conn, settings.payment_rescue_seconds)
    finally:
        await conn.close()
    if expired:
        metrics.HOLDS_EXPIRED.labels("sweeper").inc(len(expired))
        await after_release(settings, [int(r["event_id"]) for r in events])
        log.info("sweeper released %d overdue holds", len(expired))
    return len(expired), stranded


def rescue_payments(settings: Settings, payment_ids: list[int]) -> int:
    """Enqueue again the payment jobs RQ no longer knows (e.g. Redis was flushed or lost).

    A job RQ still holds is left alone: it is queued, running or being retried.
    """
    jobs = JobQueue(settings.redis_url, settings.rq_queue)
    rescued = 0
    try:
        for payment_id in payment_ids:
            if not Job.exists(payment_job_id(payment_id), connection=jobs.connection):
                jobs.enqueue_payment(payment_id)
                rescued += 1
    finally:
        jobs.close()
    if rescued:
        metrics.PAYMENTS_RESCUED.inc(rescued)
        log.warning("sweeper re-enqueued %d stranded payments", rescued)
    return rescued


def sweep_overdue_holds_job() -> int:
    with _timed("sweep_overdue_holds"):
        settings = load_settings()
        expired, stranded = asyncio.run(_sweep(settings))
        if stranded:
            rescue_payments(settings, stranded)
        return expired
