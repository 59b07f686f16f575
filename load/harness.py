"""What every experiment under load/ stands on: a server with its workers on a free port, with a
database and a Redis of their own; the machine description; event creation. Every wait bounded.

    with Stack("stampede", env={"HOLD_SECONDS": "30"}) as stack:
        event = asyncio.run(create_event(stack.base_url, rows=4))

Isolation on a shared machine (nothing fixed is ever flushed or dropped):
- PostgreSQL (LOAD_PG_URL, default the local server): the harness CREATEs a database named
  `load_<experiment>_<unique suffix>` (or LOAD_DATABASE / `database=`), migrates it, and drops it
  at the end only because it created it (LOAD_KEEP_DATABASE=1 keeps it for inspection). A name that
  already exists is refused, never dropped.
- Redis: by default a private redis-server on a free loopback port (no persistence), stopped at
  the end. With LOAD_REDIS_URL (e.g. redis://127.0.0.1:6379/9) that db is used only if it is empty;
  the harness claims it with a marker key and empties it at the end only while the marker is still
  its own.
Logs of the subprocesses go to files under a temporary directory (printed on failure). SIGTERM
or SIGINT unwinds the run, so what it started and created is stopped and dropped.
"""

from __future__ import annotations

import asyncio
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import asyncpg
import httpx
import redis

from booking.db import database_name, migrate_url, with_database

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
PG_BASE = os.environ.get("LOAD_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ADMIN_TOKEN = "load-admin-token"
STARTUP_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
CLAIM_KEY = "load:harness:owner"


def free_port() -> int:
    """A loopback port nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def _exit_on_sigterm() -> None:
    """SIGTERM (and SIGINT, which a shell ignores for background jobs) unwinds like Ctrl-C, so
    the `with Stack` blocks stop the processes and drop what they created."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def unique_name(experiment: str) -> str:
    """`load_<experiment>_<pid>_<random>`: two runs on one machine never share a name."""
    safe = "".join(c if c.isalnum() else "_" for c in experiment.lower())
    return f"load_{safe}_{os.getpid()}_{secrets.token_hex(3)}"


# --- PostgreSQL: a database of the harness's own ----------------------------------------------


async def _create_database(url: str) -> None:
    name = database_name(url)
    conn = await asyncpg.connect(with_database(url, "postgres"))
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            raise RuntimeError(f"database {name!r} exists: the harness drops only what it created")
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    await migrate_url(url)


async def _drop_database(url: str) -> None:
    conn = await asyncpg.connect(with_database(url, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database_name(url)}" WITH (FORCE)')
    finally:
        await conn.close()


@contextmanager
def own_database(name: str) -> Iterator[str]:
    """Create database `name` (refused if it exists), migrate it, yield its URL, drop it."""
    url = with_database(PG_BASE, name)
    asyncio.run(asyncio.wait_for(_create_database(url), timeout=60))
    try:
        yield url
    finally:
        if os.environ.get("LOAD_KEEP_DATABASE") != "1":
            asyncio.run(asyncio.wait_for(_drop_database(url), timeout=60))


# --- Redis: a private server, or a claimed empty db ---------------------------------------------


@contextmanager
def private_redis(maxmemory: int = 0, port: int | None = None) -> Iterator[redis.Redis]:
    """A redis-server of our own on a free loopback port: no persistence, stopped at the end."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed (or set LOAD_REDIS_URL)")
    port = port or free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--maxmemory", str(maxmemory), "--daemonize", "no", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"redis-server on port {port} did not answer")
        yield client
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def claimed_redis_db(url: str) -> Iterator[str]:
    """Use the db at `url` only if it is empty; empty it afterwards only if still ours."""
    client = redis.Redis.from_url(url, socket_timeout=10)
    token = secrets.token_hex(8)
    try:
        if client.dbsize() != 0 or not client.set(CLAIM_KEY, token, nx=True):
            raise RuntimeError(f"{url} is not empty: pick an empty db (LOAD_REDIS_URL)")
        yield url
        if client.get(CLAIM_KEY) == token.encode():
            client.flushdb()
    finally:
        client.close()


@contextmanager
def own_redis() -> Iterator[str]:
    """The URL of a Redis db this run alone uses (see the module docstring)."""
    external = os.environ.get("LOAD_REDIS_URL")
    if external:
        with claimed_redis_db(external) as url:
            yield url
        return
    with private_redis() as client:
        yield f"redis://127.0.0.1:{client.connection_pool.connection_kwargs['port']}/0"


# --- the server and its workers -----------------------------------------------------------------


class Stack:
    """One uvicorn app process and `workers` RQ worker processes on their own DB and Redis.

    `redis_url`: use this Redis (e.g. a private server the experiment configures itself) instead
    of own_redis(); the experiment owns it then.
    """

    def __init__(
        self,
        experiment: str,
        env: dict[str, str] | None = None,
        workers: int = 1,
        redis_url: str | None = None,
        database: str | None = None,
    ) -> None:
        self.experiment = experiment
        self.database = database or os.environ.get("LOAD_DATABASE") or unique_name(experiment)
        self.database_url = with_database(PG_BASE, self.database)
        self.redis_url = redis_url or ""
        self._given_redis = redis_url is not None
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.log_dir = Path(tempfile.mkdtemp(prefix=f"load-{experiment}-"))
        self._extra_env = env or {}
        self.procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []
        self._cleanups: list[Any] = []

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "RQ_QUEUE": f"load-{self.database}",
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "ADMISSION_SECRET": f"load-secret-{self.database}",
            "LOG_LEVEL": "warning",
            "PYTHONUNBUFFERED": "1",
            # Load runs create thousands of users from 127.0.0.1: the per-address limits are
            # off, and so is the buyer seat cap (the holds and stampede benchmarks have one
            # client hold many seats). The proof of work stays on: Locust buyers solve it.
            "ACCOUNTS_PER_IP_PER_MINUTE": "0",
            "JOINS_PER_IP_PER_MINUTE": "0",
            "UNKNOWN_POLLS_PER_IP_PER_MINUTE": "0",
            "MAX_SEATS_PER_BUYER": "0",
            **self._extra_env,
        }

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("wb")
        self._logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=self._env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def _enter(self, cm: Any) -> Any:
        value = cm.__enter__()
        self._cleanups.append(cm)
        return value

    def start(self) -> Stack:
        _exit_on_sigterm()
        try:
            self._enter(own_database(self.database))
            if not self._given_redis:
                self.redis_url = self._enter(own_redis())
            print(f"harness: database {self.database}, Redis {self.redis_url}", flush=True)
            self._start_processes()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_processes(self) -> None:
        web = self._spawn(
            "web",
            ["-m", "uvicorn", "booking.asgi:app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning", "--no-access-log", "--no-proxy-headers"],
        )  # fmt: skip
        for i in range(self.workers):
            self._spawn(f"worker{i}", ["-m", "workers.run"])
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            if web.poll() is not None:
                raise RuntimeError(f"server exited with {web.returncode}; logs in {self.log_dir}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready in time; logs in {self.log_dir}")
            time.sleep(0.1)
        print(f"harness: app {self.base_url} + {self.workers} worker(s) up", flush=True)

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
        while self._cleanups:  # Redis, then the database: the reverse of their creation
            self._cleanups.pop().__exit__(None, None, None)

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


# --- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    seat_ids: list[int]


async def create_event(
    http: httpx.AsyncClient,
    *,
    name: str | None = None,
    rows: int = 4,
    seats_per_row: int = 25,
    price: int = 5000,
    waiting_room: bool = False,
    room: dict[str, int] | None = None,
    with_seats: bool = True,
) -> Event:
    """An on-sale event through the admin API (`http` has the stack's base_url); `room` sets
    the waiting room (admit_per_second, max_active, admission_window_seconds)."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    r = await http.post(
        "/api/admin/events",
        json={
            "name": name or f"load {secrets.token_hex(4)}",
            "starts_at": "2030-01-01T20:00:00+00:00",
            "seats": [
                {"section": "A", "rows": rows, "seats_per_row": seats_per_row, "price": price}
            ],
            "waiting_room_enabled": waiting_room,
        },
        headers=headers,
    )
    r.raise_for_status()
    event_id = int(r.json()["id"])
    if room is not None:
        patch = await http.patch(
            f"/api/admin/events/{event_id}/waiting-room", json=room, headers=headers
        )
        patch.raise_for_status()
    if not with_seats:
        return Event(event_id, [])
    seats = (await http.get(f"/api/events/{event_id}/seats")).raise_for_status().json()
    return Event(event_id, [int(s["id"]) for s in seats])
