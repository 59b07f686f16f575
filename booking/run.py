"""`make run`: preflight checks, migrations, demo seed, then the web app and an RQ worker.

Stops both on Ctrl-C. Honours every setting in booking.settings (HOST, PORT, DATABASE_URL, ...),
so two copies can run side by side.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

from booking.db import create_pool, migrate_url
from booking.preflight import preflight
from booking.seed import seed_demo
from booking.settings import Settings, load_settings


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
        event_id, created = await seed_demo(pool, settings.demo_seats)
    finally:
        await pool.close()
    print(f"demo event {event_id} {'seeded' if created else 'already present'}")
    return event_id


def main() -> None:
    settings = load_settings()
    event_id = asyncio.run(prepare(settings))
    worker = subprocess.Popen([sys.executable, "-m", "workers.run"], env=os.environ.copy())
    web = subprocess.Popen(
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
        ],
        env=os.environ.copy(),
    )
    base = f"http://{settings.host}:{settings.port}"
    print(f"service: {base}/  waiting room: {base}/events/{event_id}/waiting-room")
    print(f"metrics: {base}/metrics  readiness: {base}/readyz  (Ctrl-C stops web and worker)")
    try:
        while web.poll() is None and worker.poll() is None:
            try:
                web.wait(timeout=1)
            except subprocess.TimeoutExpired:
                continue
    except KeyboardInterrupt:
        pass
    finally:
        for proc in (web, worker):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (web, worker):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    raise SystemExit(web.returncode or worker.returncode or 0)


if __name__ == "__main__":
    main()
