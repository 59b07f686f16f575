"""The worker process: an RQ worker with the scheduler (hold-expiry jobs run at their time),
plus a sweeper thread that enqueues the overdue-hold sweep every SWEEP_INTERVAL_SECONDS.

With N worker processes the sweep is still enqueued once per interval (a Redis SET NX guard).

Metrics: jobs run in this process (rq's SimpleWorker: no work-horse fork per job), so the
counters and histograms they record live here and are served on
WORKER_METRICS_HOST:WORKER_METRICS_PORT (`prometheus_client.start_http_server`). Each worker
process is its own scrape target; see docs/observability.md for why not multiprocess mode.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading

from redis import Redis
from rq import SimpleWorker

from booking.settings import Settings, load_settings
from workers.queue import JobQueue

log = logging.getLogger(__name__)


def start_metrics_server(settings: Settings) -> int | None:
    """Serve this process's metrics; the bound port, or None (port 0 disables, or it is taken).

    A second worker on the same host with the same port logs a warning and runs unscraped
    rather than failing: give each worker its own WORKER_METRICS_PORT to scrape them all.
    """
    # This process's samples are served from its own registry: a PROMETHEUS_MULTIPROC_DIR meant
    # for the web processes must not switch the worker into multiprocess mode.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.pop("prometheus_multiproc_dir", None)
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


def sweep_guard_key(queue: str) -> str:
    # Per queue: deployments sharing one Redis db each keep their own sweep schedule.
    return f"sweeper:{queue}:guard"


def sweeper_loop(settings: Settings, jobs: JobQueue, stop: threading.Event) -> None:
    interval = settings.sweep_interval_seconds
    guard = sweep_guard_key(settings.rq_queue)
    while not stop.wait(0 if interval <= 0 else min(interval, 1.0)):
        try:
            if jobs.connection.set(guard, "1", nx=True, ex=max(1, interval)):
                jobs.enqueue_sweep()
        except Exception:  # Redis hiccup: try again next interval
            log.exception("sweeper enqueue failed")


def main() -> None:
    parser = argparse.ArgumentParser(description="RQ worker for payments and hold expiry")
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--name", default=None, help="worker name (default: RQ's)")
    args = parser.parse_args()
    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper())
    start_metrics_server(settings)
    jobs = JobQueue(settings.redis_url, settings.rq_queue)
    stop = threading.Event()
    sweeper = threading.Thread(target=sweeper_loop, args=(settings, jobs, stop), daemon=True)
    sweeper.start()
    worker = SimpleWorker(
        [jobs.queue], connection=Redis.from_url(settings.redis_url), name=args.name
    )
    try:
        worker.work(with_scheduler=True, burst=args.burst, logging_level=settings.log_level.upper())
    finally:
        stop.set()


if __name__ == "__main__":
    main()
