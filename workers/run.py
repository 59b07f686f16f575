"""The worker process: PAYMENT_CONCURRENCY RQ workers on threads (workers/threads.py) reading
the sweep queue first, then the payment queue; RQ's scheduler (payment retries); and a sweeper
thread that enqueues, on the sweep queue, the expiry sweep every EXPIRY_SWEEP_INTERVAL_SECONDS
(due entries of the expiry schedule) and the full sweep every SWEEP_INTERVAL_SECONDS (overdue
holds whatever Redis lost, stranded payments, owed refunds).

With N worker processes each sweep is still enqueued once per interval (a Redis SET NX guard).

Metrics: jobs run in this process (rq's SimpleWorker: no work-horse fork per job), so the
counters and histograms they record live here and are served on
WORKER_METRICS_HOST:WORKER_METRICS_PORT (`prometheus_client.start_http_server`). Each worker
process is its own scrape target; see docs/observability.md for why not multiprocess mode.
"""

from __future__ import annotations

import argparse
import logging
import threading

from booking.jobqueue import JobQueue
from booking.redis_clients import rq_redis_url
from booking.settings import Settings, leave_multiprocess_metrics, load_settings
from workers.runtime import runtime
from workers.threads import WorkerThreads

log = logging.getLogger(__name__)


def start_metrics_server(settings: Settings) -> int | None:
    """Serve this process's metrics; the bound port, or None (port 0 disables, or it is taken).

    A second worker on the same host with the same port logs a warning and runs unscraped
    rather than failing: give each worker its own WORKER_METRICS_PORT to scrape them all.
    """
    # This process's samples are served from its own registry: a PROMETHEUS_MULTIPROC_DIR meant
    # for the web processes must not switch the worker into multiprocess mode.
    leave_multiprocess_metrics()
    from prometheus_client import start_http_server

    from booking.metrics import instrument_redis_metrics

    instrument_redis_metrics()
    if settings.worker_metrics_port <= 0:
        return None
    try:
        server, _thread = start_http_server(
            settings.worker_metrics_port, addr=settings.worker_metrics_host
        )
    except OSError as exc:
        log.warning(
            "worker metrics not served on %s:%s (%s)",
            settings.worker_metrics_host,
            settings.worker_metrics_port,
            exc,
        )
        return None
    port = int(server.server_address[1])
    log.info("worker metrics on http://%s:%d/metrics", settings.worker_metrics_host, port)
    return port


def worker_thread_count(payment_concurrency: int) -> int:
    """RQ threads for PAYMENT_CONCURRENCY (N) provider slots: N + min(N, 32).

    A thread is busy for a payment's whole job: the RQ bookkeeping (dequeue, status, registries),
    the statements before and after the charge, and the charge. Only the charge needs a provider
    slot (booking/provider.py BoundedProvider), so with spare threads the rest of one job
    overlaps the charges of others and the N slots stay busy; at most N calls still reach the
    provider at once. On a loaded box the rest of a job took ~60 % of a 200 ms charge
    (docs/scaling.md), hence up to N spare threads; past 32 more threads only contend for the
    GIL (N = 64: 128 threads settled fewer payments than 80-96)."""
    slots = max(1, payment_concurrency)
    return slots + min(slots, 32)


def sweep_guard_key(queue: str, kind: str = "") -> str:
    # Per queue: deployments sharing one Redis db each keep their own sweep schedule.
    return f"sweeper:{queue}:guard{kind}"


def sweeper_loop(settings: Settings, jobs: JobQueue, stop: threading.Event) -> None:
    interval = settings.sweep_interval_seconds
    expiry_ms = max(100, int(settings.expiry_sweep_interval_seconds * 1000))
    guard = sweep_guard_key(settings.rq_queue)
    expiry_guard = sweep_guard_key(settings.rq_queue, ":expiry")
    tick = min(0.2, expiry_ms / 1000)
    while not stop.wait(tick):
        try:
            if jobs.connection.set(expiry_guard, "1", nx=True, px=expiry_ms):
                jobs.enqueue_expiry_sweep()
            # SWEEP_INTERVAL_SECONDS=0 turns the overdue-hold sweep off (expiry sweeps go on).
            if interval > 0 and jobs.connection.set(guard, "1", nx=True, ex=interval):
                jobs.enqueue_sweep()
        except Exception:  # Redis hiccup: try again next tick
            log.exception("sweeper enqueue failed")


def main() -> None:
    parser = argparse.ArgumentParser(description="RQ worker for payments and hold expiry")
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--name", default=None, help="worker name (default: RQ's)")
    args = parser.parse_args()
    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper())
    start_metrics_server(settings)
    jobs = JobQueue.from_settings(settings)
    # Import the jobs and open the runtime now, not inside the first N jobs (they would all wait
    # on the import lock, then on the pool).
    import workers.jobs  # noqa: F401

    runtime()
    # Sweeps first: they never wait behind a payment backlog.
    threads = WorkerThreads(
        rq_redis_url(settings),
        [jobs.sweeps.name, jobs.queue.name],
        worker_thread_count(settings.payment_concurrency),
        args.name,
    )
    stop = threading.Event()
    sweeper = threading.Thread(target=sweeper_loop, args=(settings, jobs, stop), daemon=True)
    try:
        threads.run(
            burst=args.burst,
            level=settings.log_level.upper(),
            with_scheduler=True,
            on_started=sweeper.start,
        )
    finally:
        stop.set()


if __name__ == "__main__":
    main()
