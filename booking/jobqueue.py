"""Enqueueing the workers' jobs: payments on RQ_QUEUE; sweeps and expiries on their own queue
(RQ_SWEEP_QUEUE), which every worker reads first, so they never wait behind a payment backlog.

Part of booking (the web app enqueues, the workers run): jobs are named by their dotted path as
strings, so booking never imports workers and the dependency runs one way, workers -> booking.
"""

from __future__ import annotations

from redis import Redis
from rq import Queue, Retry

from booking.redis_clients import rq_redis_url
from booking.settings import Settings

PAYMENT_JOB = "workers.jobs.complete_payment_job"
SWEEP_JOB = "workers.jobs.sweep_overdue_holds_job"
EXPIRY_JOB = "workers.jobs.expire_due_holds_job"


def payment_job_id(payment_id: int) -> str:
    return f"payment-{payment_id}"


def sweep_queue_name(settings: Settings) -> str:
    return settings.rq_sweep_queue or f"{settings.rq_queue}-sweeps"


def retry_intervals(raw: str) -> list[int]:
    """ "1,2,5" -> [1, 2, 5]: one RQ retry per entry; "" -> no retries."""
    return [int(part) for part in raw.split(",") if part.strip()]


class JobQueue:
    """Thin wrapper so the web app never spells job paths or RQ options itself."""

    def __init__(
        self,
        redis_url: str,
        queue_name: str,
        sweep_queue: str | None = None,
        retries: list[int] | None = None,
    ) -> None:
        self.connection = Redis.from_url(redis_url)
        self.queue = Queue(queue_name, connection=self.connection)
        self.sweeps = Queue(sweep_queue or f"{queue_name}-sweeps", connection=self.connection)
        self.retries = [1, 2, 5] if retries is None else retries

    @classmethod
    def from_settings(cls, settings: Settings) -> JobQueue:
        return cls(
            rq_redis_url(settings),  # RQ's own single Redis (it is not cluster-aware)
            settings.rq_queue,
            sweep_queue_name(settings),
            retry_intervals(settings.payment_retry_intervals),
        )

    def enqueue_payment(
        self,
        payment_id: int,
        trace_carrier: dict[str, str] | None = None,
        job_id: str | None = None,
    ) -> str:
        retry = Retry(max=len(self.retries), interval=self.retries) if self.retries else None
        job = self.queue.enqueue(
            PAYMENT_JOB,
            payment_id,
            trace_carrier or {},
            job_id=job_id or payment_job_id(payment_id),
            retry=retry,
            result_ttl=3600,
            failure_ttl=86400,
        )
        return str(job.id)

    def enqueue_sweep(self) -> str:
        return str(self.sweeps.enqueue(SWEEP_JOB, result_ttl=60).id)

    def enqueue_expiry_sweep(self) -> str:
        return str(self.sweeps.enqueue(EXPIRY_JOB, result_ttl=10).id)

    def close(self) -> None:
        self.connection.close()
