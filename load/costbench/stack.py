"""The service as `make run` starts it (`python -m booking.run`), on a database and Redis db of
the benchmark's own (both emptied first); every wait is bounded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

from load.costbench import proc
from load.harness import free_port

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "costbench-admin-token"
STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
# Limits and checks other parts of the service add against hostile traffic would throttle a
# benchmark that sends thousands of users from one address: turned off explicitly (names the
# service does not know yet are ignored).
LIMITS_OFF = {
    "ACCOUNTS_PER_IP_PER_MINUTE": "0",
    "JOINS_PER_IP_PER_MINUTE": "0",
    "POW_DIFFICULTY": "0",
    "MAX_SEATS_PER_BUYER": "0",
}


class Service:
    """`python -m booking.run` with `web_processes` web processes and `workers` RQ workers."""

    def __init__(
        self,
        database_url: str,
        redis_url: str,
        *,
        web_processes: int,
        workers: int,
        env: dict[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_dir = Path(tempfile.mkdtemp(prefix="costbench-"))
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(web_processes),
            "WORKERS": str(workers),
            "RQ_QUEUE": "costbench",
            "RQ_DASHBOARD_PORT": "0",
            "WORKER_METRICS_PORT": "0",
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "ADMISSION_SECRET": "costbench-admission-secret",
            "LOG_LEVEL": "warning",
            "DEMO_SEATS": "300",
            "PYTHONUNBUFFERED": "1",
            **LIMITS_OFF,
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> Service:
        # The database and Redis are the run's own, fresh (load/costbench/__main__.py).
        self._log = (self.log_dir / "service.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "booking.run"],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited; log: {self.log_dir / 'service.log'}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"service not ready; log: {self.log_dir / 'service.log'}")
            time.sleep(0.2)
        return self

    def _children(self, needle: str) -> list[int]:
        assert self.process is not None
        found = []
        for pid in proc.children(self.process.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if needle.encode() in cmdline:
                found.append(pid)
        return found

    def web_pids(self) -> list[int]:
        """The uvicorn master and its worker processes."""
        return [p for root in self._children("uvicorn") for p in proc.tree(root)]

    def worker_pids(self) -> list[int]:
        return [p for root in self._children("workers.run") for p in proc.tree(root)]

    def cpu(self) -> tuple[float, float]:
        """(web CPU seconds, total CPU seconds with workers and the launcher)."""
        assert self.process is not None
        web = proc.cpu_seconds(self.web_pids())
        others = proc.cpu_seconds([self.process.pid, *self.worker_pids()], reaped_children=True)
        return web, web + others

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # booking.run's Ctrl-C path stops them all
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
