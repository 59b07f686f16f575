"""What every experiment under load/ stands on: a server with its workers on a free port, with a
database and a Redis of their own; the machine description; event creation. Every wait bounded.

    with Stack("stampede", env={"HOLD_SECONDS": "30"}) as stack:
        event = asyncio.run(create_event(stack.base_url, rows=4))

Two ways to run the service: `Stack` (one uvicorn process and N RQ workers, each started here)
and `LauncherStack` (like `make run`: `python -m booking.run` with WEB_CONCURRENCY web processes,
RQ workers and the admitter, supervised by the launcher). Both on the same isolation:

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
import contextlib
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
from booking.supervise import STOP_GRACE_SECONDS
from load import proc
from ops.processes import stop_processes

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
PG_BASE = os.environ.get("LOAD_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ADMIN_TOKEN = "load-admin-token"
STARTUP_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
CLAIM_KEY = "load:harness:owner"
Popen = subprocess.Popen[bytes]
# Load runs create thousands of users from 127.0.0.1: the per-address limits are off, and so
# is the buyer seat cap (the holds and stampede benchmarks have one client hold many seats).
# The proof of work stays on: Locust buyers solve it.
LIMITS_OFF = {
    "ACCOUNTS_PER_IP_PER_MINUTE": "0",
    "JOINS_PER_IP_PER_MINUTE": "0",
    "UNKNOWN_POLLS_PER_IP_PER_MINUTE": "0",
    "MAX_SEATS_PER_BUYER": "0",
}


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
def _redis_server(maxmemory: int, port: int | None) -> Iterator[tuple[redis.Redis, int]]:
    """A redis-server of our own on a free loopback port: (a client, its pid)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed (or set LOAD_REDIS_URL)")
    port = port or free_port()
    server = subprocess.Popen(
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
        yield client, server.pid
    finally:
        client.close()
        stop_processes([server])


@contextmanager
def private_redis(maxmemory: int = 0, port: int | None = None) -> Iterator[redis.Redis]:
    """A redis-server of our own on a free loopback port: no persistence, stopped at the end."""
    with _redis_server(maxmemory, port) as (client, _pid):
        yield client


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


@dataclass(frozen=True, slots=True)
class OwnRedis:
    url: str
    server_pid: int | None  # the private redis-server's; None for a claimed db (shared server)


@contextmanager
def own_redis_server() -> Iterator[OwnRedis]:
    """A Redis db this run alone uses (see the module docstring), with its server's pid when the
    server is the run's own (its CPU is then the run's alone)."""
    external = os.environ.get("LOAD_REDIS_URL")
    if external:
        with claimed_redis_db(external) as url:
            yield OwnRedis(url, None)
        return
    with _redis_server(0, None) as (client, pid):
        port = client.connection_pool.connection_kwargs["port"]
        yield OwnRedis(f"redis://127.0.0.1:{port}/0", pid)


@contextmanager
def own_redis() -> Iterator[str]:
    """The URL of a Redis db this run alone uses (see the module docstring)."""
    with own_redis_server() as own:
        yield own.url


# --- the server and its workers -----------------------------------------------------------------


class Stack:
    """One uvicorn app process and `workers` RQ worker processes on their own DB and Redis.

    `redis_url`: use this Redis (e.g. a private server the experiment configures itself) instead
    of own_redis(); the experiment owns it then (and `redis_pid` stays None).
    """

    startup_timeout = STARTUP_TIMEOUT_SECONDS
    stop_timeout = STOP_TIMEOUT_SECONDS

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
        self.redis_pid: int | None = None  # set when the harness started the redis-server
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
            **LIMITS_OFF,
            **self._extra_env,
        }

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Popen:
        log = (self.log_dir / f"{name}.log").open("wb")
        self._logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env={**self._env(), **(env or {})},
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
                own: OwnRedis = self._enter(own_redis_server())
                self.redis_url, self.redis_pid = own.url, own.server_pid
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
        self._wait_ready(web)
        print(f"harness: app {self.base_url} + {self.workers} worker(s) up", flush=True)

    def _wait_ready(self, first: Popen) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if first.poll() is not None:
                raise RuntimeError(f"server exited with {first.returncode}; logs in {self.log_dir}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready in time; logs in {self.log_dir}")
            time.sleep(0.1)

    # Which processes do what (for CPU accounting): pids alive right now.
    def web_pids(self) -> list[int]:
        """The web server's processes (uvicorn; with --workers, its master and workers)."""
        return proc.tree(self.procs[0].pid) if self.procs else []

    def worker_pids(self) -> list[int]:
        """The RQ worker processes and whatever they forked."""
        return [p for worker in self.procs[1:] for p in proc.tree(worker.pid)]

    def launcher_pids(self) -> list[int]:
        """A launcher that supervises the others (none here)."""
        return []

    def stop_processes(self) -> None:
        """Stop the service's processes, keeping the database and Redis (until stop())."""
        stop_processes(self.procs, self.stop_timeout)
        self.procs.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def stop(self) -> None:
        self.stop_processes()
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


class LauncherStack(Stack):
    """The service as `make run` serves it: `python -m booking.run` (migrations, demo seed, then
    uvicorn with `web_processes` processes, `workers` supervised RQ workers, the admitter), on the
    same database and Redis isolation as Stack. The RQ dashboard and worker metrics ports are
    off (port 0); `env` may set DEMO_SEATS and the rest."""

    startup_timeout = 60.0  # migrations and the demo seed come first
    stop_timeout = 2 * STOP_GRACE_SECONDS  # the launcher's own bound for its children, and more

    def __init__(
        self,
        experiment: str,
        env: dict[str, str] | None = None,
        workers: int = 1,
        redis_url: str | None = None,
        database: str | None = None,
        web_processes: int = 1,
    ) -> None:
        super().__init__(experiment, env, workers, redis_url, database)
        self.web_processes = web_processes

    def _start_processes(self) -> None:
        launcher = self._spawn(
            "launcher",
            ["-m", "booking.run"],
            env={
                "WEB_CONCURRENCY": str(self.web_processes),
                "WORKERS": str(self.workers),
                "RQ_DASHBOARD_PORT": "0",
                "WORKER_METRICS_PORT": "0",
            },
        )
        self._wait_ready(launcher)
        print(
            f"harness: booking.run at {self.base_url}: {self.web_processes} web process(es), "
            f"{self.workers} worker(s)",
            flush=True,
        )

    def _children(self, needle: str) -> list[int]:
        """The launcher's children whose command line contains `needle`."""
        if not self.procs:
            return []
        return [
            pid for pid in proc.children(self.procs[0].pid) if needle.encode() in proc.cmdline(pid)
        ]

    def web_pids(self) -> list[int]:
        return [p for root in self._children("uvicorn") for p in proc.tree(root)]

    def worker_pids(self) -> list[int]:
        return [p for root in self._children("workers.run") for p in proc.tree(root)]

    def launcher_pids(self) -> list[int]:
        return [self.procs[0].pid] if self.procs else []

    def stop_processes(self) -> None:
        """SIGTERM to the launcher alone (it stops its children within a bound); whatever of
        its process tree is still running after that is killed."""
        started = [p for launcher in self.procs for p in proc.tree(launcher.pid)]
        super().stop_processes()
        for pid in started:
            if proc.running(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


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
