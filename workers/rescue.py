"""Which pending payments the sweeper enqueues again: those whose RQ job will not settle them.

A payment pending longer than PAYMENT_RESCUE_SECONDS is rescued when its job is missing (lost
with Redis), failed (retries exhausted, e.g. PostgreSQL was down longer than the retry budget),
stopped or cancelled, finished without settling it, or started that long ago (its worker died
mid-payment: SIGKILL, OOM). A job still queued, deferred or waiting for its retry is left alone.
Running a payment twice is harmless (the provider and the settlement are idempotent).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from workers.queue import JobQueue, payment_job_id

log = logging.getLogger(__name__)

WAITING = {JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED}


def needs_rescue(job: Job | None, started_before: datetime) -> bool:
    if job is None:
        return True
    status = job.get_status(refresh=False)
    if status in WAITING:
        return False
    if status == JobStatus.STARTED:
        started = job.started_at
        if started is not None and started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        return started is None or started < started_before
    return True  # failed, stopped, canceled, finished (yet still pending), or unknown


def forget(jobs: JobQueue, job: Job) -> None:
    """Delete a job RQ will not finish. RQ's own `Job.delete` raises when a dead worker left an
    execution half-written, so registries are cleaned by hand then."""
    try:
        job.delete()
        return
    except Exception as exc:
        log.info("job %s: RQ could not delete it (%r); removing it by hand", job.id, exc)
    conn = jobs.connection
    queue = jobs.queue
    for registry in (queue.failed_job_registry, queue.finished_job_registry):
        conn.zrem(registry.key, job.id)
    started = queue.started_job_registry.key
    # Started entries are "<job id>:<execution id>" (RQ 2+) or the bare job id.
    members: list[bytes] = list(conn.zrange(started, 0, -1))  # type: ignore[arg-type]
    stale = [m for m in members if m.decode().split(":")[0] == job.id]
    if stale:
        conn.zrem(started, *stale)
    conn.delete(job.key)


def rescue_payments(jobs: JobQueue, payment_ids: list[int], rescue_seconds: float) -> int:
    """Enqueue a fresh job for each payment whose job will not settle it; how many were."""
    started_before = datetime.now(UTC) - timedelta(seconds=rescue_seconds)
    rescued = 0
    for payment_id in payment_ids:
        job_id = payment_job_id(payment_id)
        try:
            job: Job | None = Job.fetch(job_id, connection=jobs.connection)
        except NoSuchJobError:
            job = None
        if not needs_rescue(job, started_before):
            continue
        try:
            if job is not None:
                forget(jobs, job)  # off every registry; the fresh job reuses its id
            jobs.enqueue_payment(payment_id)
        except Exception:  # one bad job must not stop the others' rescue
            log.exception("rescue of payment %s failed; the next sweep tries again", payment_id)
            continue
        rescued += 1
    if rescued:
        log.warning("sweeper re-enqueued %d stranded payments", rescued)
    return rescued
