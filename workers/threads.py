"""PAYMENT_CONCURRENCY RQ workers in one process, one per thread, all on the same queues.

Each thread is an ordinary rq SimpleWorker (its own name, heartbeat, registries, retries), so
a payment stays an RQ job; a job's coroutine runs on the process's shared asyncio loop
(workers/runtime.py), so N of them wait on the provider at once. Jobs bound their own time
(Runtime.run's timeout): the signal-based death penalty works on the main thread only.

If the process dies, its threads' started jobs are abandoned: the sweeper rescues them
(workers/rescue.py), and settling a payment twice is harmless.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from types import FrameType

from redis import Redis
from redis.client import Pipeline
from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq.job import Job
from rq.timeouts import BaseDeathPenalty
from rq.utils import now
from rq.worker import WorkerStatus

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10.0
HEARTBEAT_EVERY_SECONDS = 5.0
SUSPENSION_CHECK_EVERY_SECONDS = 1.0
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In a child forked from this process (RQ's scheduler): get SIGTERM when the parent dies.
    Without it a SIGKILLed worker leaves its scheduler running on its own (Linux only)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class NoDeathPenalty(BaseDeathPenalty):
    def setup_death_penalty(self) -> None:
        pass

    def cancel_death_penalty(self) -> None:
        pass


class ThreadWorker(SimpleWorker):
    """A SimpleWorker that can run off the main thread (no signals, no pub/sub thread)."""

    death_penalty_class = NoDeathPenalty
    _suspension_checked_at = float("-inf")
    _prepared_job_id: str | None = None

    def _install_signal_handlers(self) -> None:
        pass  # the process's main thread handles SIGTERM/SIGINT for all threads

    def subscribe(self) -> None:
        self.pubsub_thread = None  # no per-thread pub/sub: `rq` remote commands are not used

    def unsubscribe(self) -> None:
        pass

    # RQ beats its worker key 3 times per job, 3 commands each, outside any pipeline: at N jobs
    # a second that is most of a job's bookkeeping. The key lives minutes (worker_ttl), so one
    # pipelined beat every few seconds keeps it just as alive.
    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)  # type: ignore[no-untyped-call]
            return
        last = self.last_heartbeat
        if last is not None and (now() - last).total_seconds() < HEARTBEAT_EVERY_SECONDS:
            return
        with self.connection.pipeline(transaction=False) as beat:
            super().heartbeat(timeout, beat)  # type: ignore[no-untyped-call]
            beat.execute()

    # `rq suspend` is checked before every job, one round trip each: once a second is as good.
    def check_for_suspension(self, burst: bool) -> None:
        checked = time.monotonic()
        if checked - self._suspension_checked_at < SUSPENSION_CHECK_EVERY_SECONDS:
            return
        self._suspension_checked_at = checked
        super().check_for_suspension(burst)  # type: ignore[no-untyped-call]

    # RQ starts a job in two transactions: the execution record (started registry) with the
    # worker's busy state, then the job's status, start time and heartbeats. One transaction
    # writes both, so a started job is never seen half-prepared either.
    def prepare_execution(self, job: Job) -> Execution:
        with self.connection.pipeline() as pipeline:
            ttl = self.get_heartbeat_ttl(job)
            execution = Execution.create(job, ttl, pipeline=pipeline, worker_name=self.name)
            self.executions[execution.id] = execution
            self.set_state(WorkerStatus.BUSY, pipeline=pipeline)
            super().heartbeat(ttl, pipeline)  # type: ignore[no-untyped-call]
            job.heartbeat(now(), ttl, pipeline=pipeline)  # type: ignore[no-untyped-call]
            job.prepare_for_execution(self.name, pipeline=pipeline)
            pipeline.persist(job.key)
            pipeline.execute()
        self._prepared_job_id = job.id
        return execution

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        prepared, self._prepared_job_id = self._prepared_job_id, None
        if prepared == job.id and not remove_from_intermediate_queue:
            return  # done with the execution record above
        super().prepare_job_execution(job, remove_from_intermediate_queue)  # type: ignore[no-untyped-call]

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        # RQ beats the job once more here, one round trip, to give callbacks time; these jobs
        # have none, and the success or failure bookkeeping that follows clears the beat anyway.
        job.ended_at = now()

    def set_state(self, state: str, pipeline: Pipeline | None = None) -> None:
        if pipeline is None and state == self._state:
            return  # unchanged (RQ sets "idle" twice per job): no round trip
        super().set_state(state, pipeline)  # type: ignore[no-untyped-call]


class WorkerThreads:
    def __init__(self, redis_url: str, queue_names: list[str], count: int, name: str | None):
        base = name or uuid.uuid4().hex
        self.workers: list[ThreadWorker] = []
        for i in range(max(1, count)):
            connection = Redis.from_url(redis_url)
            queues = [Queue(q, connection=connection) for q in queue_names]
            self.workers.append(ThreadWorker(queues, connection=connection, name=f"{base}.{i}"))
        self._stop = threading.Event()

    def _run(self, worker: ThreadWorker, burst: bool, level: str) -> None:
        try:
            worker.work(burst=burst, logging_level=level)
        except Exception:
            log.exception("worker thread %s died", worker.name)

    def request_stop(self, signum: int = 0, frame: FrameType | None = None) -> None:
        for worker in self.workers:
            worker._stop_requested = True
        self._stop.set()

    def run(
        self,
        burst: bool,
        level: str,
        with_scheduler: bool,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        os.register_at_fork(after_in_child=_die_with_parent)
        first = self.workers[0]
        if with_scheduler:
            # Started from the main thread before any other thread exists (the scheduler forks).
            first._start_scheduler(burst, level)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
        threads = [
            threading.Thread(target=self._run, args=(w, burst, level), name=w.name, daemon=True)
            for w in self.workers
        ]
        for thread in threads:
            thread.start()
        if on_started is not None:
            on_started()
        while any(t.is_alive() for t in threads) and not self._stop.wait(0.5):
            pass
        # Stopping: threads finish their current job; those blocked waiting for one are left.
        deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
        for worker, thread in zip(self.workers, threads, strict=True):
            while thread.is_alive() and worker.get_state() == "busy":
                if time.monotonic() > deadline:
                    break
                thread.join(0.1)
            if thread.is_alive():
                try:
                    worker.register_death()  # type: ignore[no-untyped-call]
                except Exception:
                    log.warning("could not register the death of %s", worker.name)
        if with_scheduler and first.scheduler is not None:
            first.stop_scheduler()  # type: ignore[no-untyped-call]
