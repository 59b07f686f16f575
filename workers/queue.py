"""Enqueueing the workers' jobs (payment completion, hold expiry, sweeper) on the RQ queue."""

from __future__ import annotations

from datetime import datetime

from redis import Redis
from rq import Queue, Retry

PAYMENT_JOB = "workers.jobs.complete_payment_job"
EXPIRE_JOB = "workers.jobs.expire_hold_job"
SWEEP_JOB = "workers.jobs.sweep_overdue_holds_job"


def payment_job_id(payment_id: int) -> str:
    return f"payment-{payment_id}"


class JobQueue:
    """Thin wrapper so the web app never spells job paths or RQ options itself."""

    def __init__(self, redis_url: str, queue_name: str) -> None:
        self.connection = Redis.from_url(redis_url)
        self.queue = Queue(queue_name, connection=self.connection)

    def enqueue_payment(self, payment_id: int, trace_carrier: dict[str, str] | None = None) -> str:
        job = self.queue.enqueue(
            PAYMENT_JOB,
            payment_id,
            trace_carrier or {},
            job_id=payment_job_id(payment_id),
            retry=Retry(max=3, interval=[1, 2, 5]),
            result_ttl=3600,
        )
        return str(job.id)

    def schedule_expiry(self, reservation_id: int, at: datetime) -> str:
        # The worker runs with RQ's scheduler, which moves this job to the queue at `at`.
        job = self.queue.enqueue_at(
            at, EXPIRE_JOB, reservation_id, job_id=f"expire-{reservation_id}", result_ttl=600
        )
        return str(job.id)

    def enqueue_sweep(self) -> str:
        return str(self.queue.enqueue(SWEEP_JOB, result_ttl=600).id)

    def close(self) -> None:
        self.connection.close()
