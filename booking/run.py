"""`make run`: preflight checks, migrations, demo seed, then the web app, an RQ worker and the
RQ dashboard (rq-dashboard on RQ_DASHBOARD_HOST:RQ_DASHBOARD_PORT, same Redis).

Ctrl-C, SIGTERM or SIGHUP to the launcher alone stops them all (terminate, a bounded wait, then
kill: booking/supervise.py) and exits 0. Honours every setting in booking.settings (HOST, PORT,
DATABASE_URL, ...), so two copies can run side by side. `--prepare-only` does the checks,
migrations and seed, then exits (the compose stack's one-shot `migrate` service).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import subprocess
import sys
import tempfile

from booking.db import create_pool, migrate_url
from booking.preflight import preflight
from booking.redis_clients import rq_redis_url
from booking.seed import seed_demo
from booking.settings import Settings, child_env, load_settings, multiprocess_metrics_dir
from booking.supervise import StopRequested, StopSignals, Supervised, stop_all


async def prepare(settings: Settings) -> int:
    problems = await preflight(settings)
    if problems:
        for line in problems:
            print(f"error: {line}", file=sys.stderr)
        raise SystemExit(2)
    applied = await migrate_url(settings.database_url)
    print(f"migrations: {', '.join(applied) if applied else 'up to date'}")
    pool = await create_pool(settings.database_url, 1, 2)
    try:
        event_id, created = await seed_demo(pool, settings.demo_seats, settings.pow_difficulty)
    finally:
        await pool.close()
    print(f"demo event {event_id} {'seeded' if created else 'already present'}")
    return event_id


def dashboard_command(settings: Settings) -> list[str] | None:
    """The rq-dashboard command line, or None when it cannot run here (port 0, not importable)."""
    if settings.rq_dashboard_port <= 0:
        return None
    try:
        # Imported here only to fail early: rq-dashboard 0.9.0 imports `six` undeclared.
        import rq_dashboard.cli  # noqa: F401
    except ImportError as exc:
        print(f"warning: RQ dashboard not started ({exc})", file=sys.stderr)
        return None
    return [
        sys.executable,
        "-c",
        "from rq_dashboard.cli import main; main()",
        "--bind",
        settings.rq_dashboard_host,
        "--port",
        str(settings.rq_dashboard_port),
        "--redis-url",
        rq_redis_url(settings),  # the dashboard shows RQ's Redis
    ]


def worker_metrics_port(settings: Settings, index: int) -> int:
    """Each worker process serves its metrics on its own port (0 keeps them all off)."""
    return settings.worker_metrics_port + index if settings.worker_metrics_port > 0 else 0


def web_processes(settings: Settings) -> int:
    """WEB_CONCURRENCY, or one web process per CPU when it is 0."""
    return settings.web_concurrency if settings.web_concurrency > 0 else (os.cpu_count() or 1)


def web_env(processes: int) -> dict[str, str]:
    """Several processes aggregate their metrics through a shared directory (fresh per run)."""
    if processes > 1 and not multiprocess_metrics_dir():
        return child_env(PROMETHEUS_MULTIPROC_DIR=tempfile.mkdtemp(prefix="flashsale-metrics-"))
    return child_env()


def main() -> None:
    parser = argparse.ArgumentParser(description="checks, migrations, seed; web + worker + RQ UI")
    parser.add_argument(
        "--prepare-only", action="store_true", help="check, migrate and seed, then exit"
    )
    args = parser.parse_args()
    settings = load_settings()
    stop = StopSignals()
    stop.install()
    try:
        event_id = asyncio.run(prepare(settings))
    except StopRequested:
        raise SystemExit(0) from None  # nothing started yet
    if args.prepare_only:
        return
    raise SystemExit(serve(settings, event_id, stop))


def serve(settings: Settings, event_id: int, stop: StopSignals) -> int:
    """Run the children until the web server exits or a stop signal arrives; stop them all.
    The exit code: 0 when asked to stop, else the web server's."""
    children: list[subprocess.Popen[bytes]] = []
    workers: list[Supervised] = []
    try:
        with stop.deferred():
            start_children(settings, workers, children)
        web = children[0]
        announce(settings, event_id, len(children) > 1)
        # The dashboard is a convenience: its exit does not stop the service.
        while web.poll() is None:
            with stop.deferred():  # a worker restart starts a process
                for worker in workers:
                    worker.poll()
            try:
                web.wait(timeout=1)
            except subprocess.TimeoutExpired:
                continue
        return web.returncode or 0
    except StopRequested:
        return 0
    finally:
        stop.disarm()
        stop_all(children + [w.proc for w in workers])  # the workers' current processes


def start_children(
    settings: Settings, workers: list[Supervised], children: list[subprocess.Popen[bytes]]
) -> None:
    """The workers (supervised, into `workers`), the web server and the RQ dashboard if it can
    run (into `children`, web first), appended as they start so that all are stopped even if a
    later one fails to start. Each
    child leads a process group of its own, so stop_all can kill what it started in turn; the
    terminal's Ctrl-C reaches only the launcher, which stops them all."""
    # Each worker settles PAYMENT_CONCURRENCY payments at once; a dead one is restarted with
    # backoff (booking/supervise.py) instead of stopping the service.
    workers.extend(
        Supervised(
            f"worker {i}",
            functools.partial(
                subprocess.Popen,
                [sys.executable, "-m", "workers.run"],
                env=child_env(WORKER_METRICS_PORT=str(worker_metrics_port(settings, i))),
                process_group=0,
            ),
        )
        for i in range(settings.workers)
    )
    processes = web_processes(settings)
    web: subprocess.Popen[bytes] = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "booking.asgi:app",
            "--host",
            settings.host,
            "--port",
            str(settings.port),
            "--log-level",
            settings.log_level,
            # X-Forwarded-For is the app's job (TRUSTED_PROXIES, booking/clientip.py).
            "--no-proxy-headers",
            "--workers",
            str(processes),
        ],
        env=web_env(processes),
        process_group=0,
    )
    children.append(web)
    command = dashboard_command(settings)
    if command is not None:
        children.append(subprocess.Popen(command, env=child_env(), process_group=0))


def announce(settings: Settings, event_id: int, dashboard: bool) -> None:
    base = f"http://{settings.host}:{settings.port}"
    print(f"service: {base}/  waiting room: {base}/events/{event_id}/waiting-room")
    print(f"web: {web_processes(settings)} process(es) (WEB_CONCURRENCY)")
    print(f"metrics: {base}/metrics  readiness: {base}/readyz  (Ctrl-C or SIGTERM stops them all)")
    if settings.worker_metrics_port > 0:
        ports = ", ".join(str(worker_metrics_port(settings, i)) for i in range(settings.workers))
        print(f"{settings.workers} workers, metrics on {settings.worker_metrics_host}: {ports}")
    if dashboard:
        print(f"RQ dashboard: http://{settings.rq_dashboard_host}:{settings.rq_dashboard_port}/")


if __name__ == "__main__":
    main()
