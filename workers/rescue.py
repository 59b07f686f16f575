"""Which pending payments the sweeper enqueues again: those whose RQ job will not settle them.

A payment pending longer than PAYMENT_RESCUE_SECONDS is rescued when its job is missing (lost
with Redis), failed (retries exhausted, e.g. PostgreSQL was down longer than the retry budget),
stopped or cancelled, finished without settling it, or started that long ago (its worker died
mid-payment: SIGKILL, OOM). A job still queued, deferred or waiting for its retry is left alone.
Running a payment twice is harmless (the provider and the settlement are idempotent).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from booking.jobqueue import JobQueue, payment_job_id

log = logging.getLogger(__name__)

WAITING = {JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED}
RESCUE_MEMORY_SECONDS = 86_400
RESCUE_LOCK_SECONDS = 60


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


def rescue_key(queue: str) -> str:
    """Hash: payment id -> the id of its latest rescue job (the first job is payment-<id>)."""
    return f"payment-rescues:{queue}"


def rescue_payments(jobs: JobQueue, payment_ids: list[int], rescue_seconds: float) -> int:
    """Enqueue a fresh job for each payment whose job will not settle it; how many were.

    Each rescue is a new job id: the old job stays where RQ put it (history), and RQ's later
    clean-up of a dead worker's job can never touch the rescue."""
    started_before = datetime.now(UTC) - timedelta(seconds=rescue_seconds)
    key = rescue_key(jobs.queue.name)
    # Two sweeps can overlap (a slow one and the next interval's): one rescues at a time, so a
    # payment is not enqueued twice by the same decision.
    lock = jobs.connection.lock(f"{key}:lock", timeout=RESCUE_LOCK_SECONDS, blocking=False)
    if not lock.acquire():
        return 0
    try:
        return _rescue(jobs, key, payment_ids, started_before)
    finally:
        lock.release()


def _rescue(jobs: JobQueue, key: str, payment_ids: list[int], started_before: datetime) -> int:
    latest = jobs.connection.hmget(key, [str(p) for p in payment_ids]) if payment_ids else []
    rescued = 0
    for payment_id, last in zip(payment_ids, latest, strict=True):
        job_id = last.decode() if isinstance(last, bytes) else last or payment_job_id(payment_id)
        try:
            job: Job | None = Job.fetch(job_id, connection=jobs.connection)
        except NoSuchJobError:
            job = None
        if not needs_rescue(job, started_before):
            continue
        try:
            new_id = f"{payment_job_id(payment_id)}-rescue-{time.time_ns()}"
            jobs.enqueue_payment(payment_id, job_id=new_id)
            jobs.connection.hset(key, str(payment_id), new_id)
            jobs.connection.expire(key, RESCUE_MEMORY_SECONDS)
        except Exception:  # one bad job must not stop the others' rescue
            log.exception("rescue of payment %s failed; the next sweep tries again", payment_id)
            continue
        rescued += 1
    if rescued:
        log.warning("sweeper re-enqueued %d stranded payments", rescued)
    return rescued
