"""Start and stop an app server and RQ worker(s) for a load script, on a database and Redis db
of the script's own (both emptied first). Every wait is bounded.

    with Stack(database="ticketing_bench", redis_db=11, env={"HOLD_SECONDS": "30"}) as stack:
        httpx.get(stack.base_url + "/healthz")

Logs of the subprocesses go to files under a temporary directory (printed on failure).
"""

from __future__ import annotations

import asyncio
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx
import redis

from booking.db import recreate_database, with_database

ROOT = Path(__file__).resolve().parent.parent
PG_BASE = os.environ.get("LOAD_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("LOAD_REDIS_URL", "redis://127.0.0.1:6379")
ADMIN_TOKEN = "load-admin-token"
STARTUP_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database_url(name: str) -> str:
    return with_database(PG_BASE, name)


def redis_url(db: int) -> str:
    return f"{REDIS_BASE.rstrip('/')}/{db}"


def reset_database(url: str) -> None:
    """Drop and recreate the database at `url`, then apply the migrations."""
    asyncio.run(asyncio.wait_for(recreate_database(url), timeout=60))


def reset_redis(url: str) -> None:
    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        client.flushdb()
    finally:
        client.close()


def machine() -> dict[str, str | int | float]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count() or 0,
        "python": platform.python_version(),
        "platform": platform.platform(),
        # Other work on the box (the cores are shared): the 1-minute load average when asked.
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


class Stack:
    """One uvicorn app process and `workers` RQ worker processes (fresh DB and Redis db)."""

    def __init__(
        self,
        database: str,
        redis_db: int,
        env: dict[str, str] | None = None,
        workers: int = 1,
        port: int | None = None,
    ) -> None:
        self.database_url = database_url(database)
        self.redis_url = redis_url(redis_db)
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.log_dir = Path(tempfile.mkdtemp(prefix=f"load-{database}-"))
        self.env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "RQ_QUEUE": f"load-{database}",
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "ADMISSION_SECRET": f"load-secret-{database}",
            "LOG_LEVEL": "warning",
            "PYTHONUNBUFFERED": "1",
            # Load runs create thousands of users from 127.0.0.1: the per-address limits are
            # off, and so is the buyer seat cap (the holds and stampede benchmarks have one
            # client hold many seats). The proof of work stays on: Locust buyers solve it.
            "ACCOUNTS_PER_IP_PER_MINUTE": "0",
            "JOINS_PER_IP_PER_MINUTE": "0",
            "UNKNOWN_POLLS_PER_IP_PER_MINUTE": "0",
            "MAX_SEATS_PER_BUYER": "0",
            **(env or {}),
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("wb")
        self._logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def start(self) -> Stack:
        print(f"serve: fresh database {self.database_url} and Redis {self.redis_url}", flush=True)
        reset_database(self.database_url)
        reset_redis(self.redis_url)
        web = self._spawn(
            "web",
            [
                "-m",
                "uvicorn",
                "booking.asgi:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
                "--no-proxy-headers",
            ],
        )
        for i in range(self.workers):
            self._spawn(f"worker{i}", ["-m", "workers.run"])
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            if web.poll() is not None:
                self.stop()
                raise RuntimeError(f"server exited with {web.returncode}; logs in {self.log_dir}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server not ready in time; logs in {self.log_dir}")
            time.sleep(0.1)
        print(f"serve: app {self.base_url} + {self.workers} worker(s) up", flush=True)
        return self

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.procs.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
