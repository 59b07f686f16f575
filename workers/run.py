"""The worker process: an RQ worker with the scheduler (hold-expiry jobs run at their time),
plus a sweeper thread that enqueues the overdue-hold sweep every SWEEP_INTERVAL_SECONDS.

With N worker processes the sweep is still enqueued once per interval (a Redis SET NX guard).
"""

from __future__ import annotations

import argparse
import logging
import threading

from redis import Redis
from rq import Worker

from booking.settings import Settings, load_settings
from workers.queue import JobQueue

SWEEP_GUARD_KEY = "ticketing:sweeper:guard"


def sweeper_loop(settings: Settings, jobs: JobQueue, stop: threading.Event) -> None:
    interval = settings.sweep_interval_seconds
    while not stop.wait(0 if interval <= 0 else min(interval, 1.0)):
        try:
            if jobs.connection.set(SWEEP_GUARD_KEY, "1", nx=True, ex=max(1, interval)):
                jobs.enqueue_sweep()
        except Exception:  # Redis hiccup: try again next interval
            logging.getLogger(__name__).exception("sweeper enqueue failed")


def main() -> None:
    parser = argparse.ArgumentParser(description="RQ worker for payments and hold expiry")
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--name", default=None, help="worker name (default: RQ's)")
    args = parser.parse_args()
    settings = load_settings()
    logging.basicConfig(level=settings.log_level.upper())
    jobs = JobQueue(settings.redis_url, settings.rq_queue)
    stop = threading.Event()
    sweeper = threading.Thread(target=sweeper_loop, args=(settings, jobs, stop), daemon=True)
    sweeper.start()
    worker = Worker([jobs.queue], connection=Redis.from_url(settings.redis_url), name=args.name)
    try:
        worker.work(with_scheduler=True, burst=args.burst, logging_level=settings.log_level.upper())
    finally:
        stop.set()


if __name__ == "__main__":
    main()
