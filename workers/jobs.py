"""RQ job functions. Each runs its coroutine on the worker process's shared asyncio loop
(workers/runtime.py: one PostgreSQL pool, Redis client and provider kept between jobs).

All are idempotent: RQ may run a job twice (retry, a worker crash, a rescue), and the sweeps
may race each other and a payment for the same hold.

Metrics are recorded in the worker process itself and served on WORKER_METRICS_PORT:
rq_job_duration_seconds for every job, payment_outcomes_total / payment_job_seconds,
holds_expired_total{by=job|sweeper} (job: the due sweep, every second; sweeper: the full scan).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from booking import metrics
from booking.holds import expire_due, expire_overdue
from booking.jobqueue import JobQueue
from booking.payments import complete_payment, refunds_owed, settle_refund, stranded_payments
from booking.statuses import PaymentStatus
from workers.rescue import rescue_payments
from workers.runtime import Runtime, runtime
from workers.side_effects import after_release, after_sale

log = logging.getLogger(__name__)

EXPIRY_BATCH = 500
EXPIRY_BATCHES_PER_RUN = 20  # at most 10,000 holds per run; the rest at the next second


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


async def _complete_payment(rt: Runtime, payment_id: int) -> dict[str, Any]:
    started = time.perf_counter()
    outcome = await complete_payment(rt.pool, rt.provider, payment_id)
    metrics.PAYMENT_LATENCY.observe(time.perf_counter() - started)
    metrics.PAYMENT_OUTCOMES.labels(outcome.status).inc()
    if outcome.status == PaymentStatus.SUCCEEDED:
        await after_sale(rt, outcome.event_id, outcome.user_id, outcome.waiting_room)
    log.info("payment %s: %s %s", payment_id, outcome.status, outcome.reason or "")
    return {"payment_id": payment_id, "status": outcome.status, "reason": outcome.reason}


def complete_payment_job(payment_id: int, trace_carrier: dict[str, str] | None = None) -> Any:
    from booking.tracing import job_span

    rt = runtime()
    with (
        _timed("complete_payment"),
        job_span("complete_payment", trace_carrier or {}, rt.settings),
    ):
        return rt.run(_complete_payment(rt, payment_id))


async def _expire_due(rt: Runtime) -> int:
    """Release the holds past their expiry, a batch at a time (a surge's holds all expire
    together): PostgreSQL's expires_at is the schedule (booking/holds.py)."""
    released = 0
    for _ in range(EXPIRY_BATCHES_PER_RUN):
        async with rt.pool.acquire() as conn:
            batch = await expire_due(conn, EXPIRY_BATCH)
        if batch:
            released += len(batch)
            metrics.HOLDS_EXPIRED.labels("job").inc(len(batch))
            await after_release(rt, [event_id for _, event_id in batch])
        if len(batch) < EXPIRY_BATCH:
            break
    return released


def expire_due_holds_job() -> int:
    rt = runtime()
    with _timed("expire_due_holds"):
        return rt.run(_expire_due(rt))


async def _sweep(rt: Runtime) -> tuple[int, list[int]]:
    """Expire every overdue hold (the due sweep's backstop), finish owed refunds; return how many
    holds were released and the payments pending too long."""
    settings = rt.settings
    async with rt.pool.acquire() as conn:
        expired = await expire_overdue(conn)
        events = await conn.fetch(
            "SELECT DISTINCT event_id FROM reservations WHERE id = ANY($1::bigint[])", expired
        )
        stranded = await stranded_payments(conn, settings.payment_rescue_seconds)
        for payment_id in await refunds_owed(conn, settings.payment_rescue_seconds):
            await settle_refund(conn, rt.provider, payment_id)
            log.warning("sweeper finished the refund of payment %s", payment_id)
    if expired:
        metrics.HOLDS_EXPIRED.labels("sweeper").inc(len(expired))
        await after_release(rt, [int(r["event_id"]) for r in events])
        log.info("sweeper released %d overdue holds", len(expired))
    return len(expired), stranded


def sweep_overdue_holds_job() -> int:
    rt = runtime()
    with _timed("sweep_overdue_holds"):
        expired, stranded = rt.run(_sweep(rt))
        if stranded:
            jobs = JobQueue.from_settings(rt.settings)
            try:
                rescued = rescue_payments(jobs, stranded, rt.settings.payment_rescue_seconds)
            finally:
                jobs.close()
            if rescued:
                metrics.PAYMENTS_RESCUED.inc(rescued)
        return expired
