"""The service under the swarm: web processes, RQ workers, their processes' CPU from /proc.

Its own database and Redis (both emptied first; see distributed.py for the Redis layouts);
every wait is bounded; stopped by PID. Web processes: one uvicorn with `--workers N` on one port,
or (behind nginx) N single-process uvicorns on ports of their own for nginx to balance.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import httpx

from booking.db import recreate_database
from load.swarm.distributed import RedisLayout
from ops.processes import stop_processes

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "swarm-admin-token"
STARTUP_SECONDS = 60.0
STOP_SECONDS = 10.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Per-address limits switched off: the swarm's 10,000 buyers all come from 127.0.0.1. The proof
# of work stays on (POW_DIFFICULTY, set per run): the buyers solve it.
LIMITS_OFF = {
    "ACCOUNTS_PER_IP_PER_MINUTE": "0",
    "JOINS_PER_IP_PER_MINUTE": "0",
    "MAX_SEATS_PER_BUYER": "0",
}


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def box_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


class Service:
    def __init__(
        self,
        database_url: str,
        redis: RedisLayout,
        web_ports: list[int],
        rq_workers: int,
        pow_difficulty: int,
        *,
        one_port: bool,
    ) -> None:
        """`one_port`: one uvicorn with a worker per entry of `web_ports` on web_ports[0];
        otherwise one uvicorn process per port."""
        self.database_url = database_url
        self.redis = redis
        self.web_ports = web_ports[:1] if one_port else web_ports
        self.web_processes = len(web_ports)
        self.base_url = f"http://127.0.0.1:{web_ports[0]}"
        self.rq_workers = rq_workers
        self.log_dir = Path(tempfile.mkdtemp(prefix="swarm-service-"))
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            **redis.env(),
            "RQ_QUEUE": "swarm",
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "ADMISSION_SECRET": "swarm-admission-secret-of-sufficient-length",
            "HOLD_SECONDS": "60",
            "PAYMENT_LATENCY_MS": "200",
            "PAYMENT_FAILURE_RATE": "0.02",
            "SWEEP_INTERVAL_SECONDS": "5",
            "DB_POOL_MAX": "20",
            "SEAT_CACHE_STRATEGY": "swr",
            "LOG_LEVEL": "warning",
            # Several web processes: prometheus-client's multiprocess files go to a temp dir
            # (set at all, even empty, it writes them into the working directory).
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="swarm-metrics-"),
            "PYTHONUNBUFFERED": "1",
            "POW_DIFFICULTY": str(pow_difficulty),
            **LIMITS_OFF,
        }
        self.webs: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("wb")
        self._logs.append(log)
        return subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def start(self) -> None:
        asyncio.run(asyncio.wait_for(recreate_database(self.database_url), timeout=60))
        if self.redis.cluster is None:
            with self.redis.client() as client:
                client.flushdb()
        else:
            self.redis.cluster.flush()  # a fresh cluster; emptied all the same
        self.webs = [self._spawn(f"web-{port}", self._uvicorn(port)) for port in self.web_ports]
        self.workers = [
            self._spawn(f"rq{i}", ["-m", "workers.run"]) for i in range(self.rq_workers)
        ]
        deadline = time.monotonic() + STARTUP_SECONDS
        for port, web in zip(self.web_ports, self.webs, strict=True):
            while not self._ready(port):
                if web.poll() is not None:
                    raise RuntimeError(f"web exited ({web.returncode}); logs: {self.log_dir}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"web not ready in {STARTUP_SECONDS}s; logs: {self.log_dir}")
                time.sleep(0.2)

    def _uvicorn(self, port: int) -> list[str]:
        workers = 1 if len(self.web_ports) > 1 else self.web_processes
        return [
            "-m", "uvicorn", "booking.asgi:app",
            "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers),
            "--log-level", "warning", "--no-access-log",
            "--backlog", "8192", "--timeout-keep-alive", "30",
        ]  # fmt: skip

    @staticmethod
    def _ready(port: int) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def pids(self) -> dict[str, list[int]]:
        """Process ids by role (a uvicorn supervisor's children are web processes too)."""
        web = [pid for w in self.webs for pid in (w.pid, *children(w.pid))]
        return {"web": web, "rq_workers": [w.pid for w in self.workers]}

    def stop(self) -> None:
        stop_processes([*self.webs, *self.workers], STOP_SECONDS)
        for log in self._logs:
            log.close()
        self._logs.clear()

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
