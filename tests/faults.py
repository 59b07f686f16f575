"""Processes the fault tests own and break on purpose: a redis-server and a PostgreSQL cluster
on spare loopback ports, in temporary directories (never the machine's shared services)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.conftest import free_port


def _pg_bin() -> Path:
    """Debian's server binaries (newest version installed), or PG_BIN."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: float(p.parts[-3])
    )
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
START_TIMEOUT_SECONDS = 30.0


def need_binary(path: str) -> str:
    """The binary's path; skip the test without it, but fail on CI (CI installs it)."""
    found = shutil.which(path) or (path if os.path.isfile(path) else None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{path} is required on CI")
        pytest.skip(f"{path} not installed")
    return found


class OwnRedis:
    """A redis-server of the test's own; `kill` and `start` again keep the same port and dir."""

    def __init__(self, directory: Path, appendonly: bool, port: int | None = None) -> None:
        self.binary = need_binary("redis-server")
        self.dir = directory
        self.port = port or free_port()
        self.appendonly = appendonly
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--dir", str(self.dir), "--appendonly", "yes" if self.appendonly else "no"]
        args += ["--appendfsync", "everysec"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                # While it reloads its AOF Redis answers LOADING errors: wait until it serves.
                if client.ping() and client.dbsize() >= 0:
                    break
            except redis.RedisError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        """SIGKILL: a crash, not a clean shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@contextmanager
def own_redis(directory: Path, appendonly: bool = False) -> Iterator[OwnRedis]:
    server = OwnRedis(directory, appendonly)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def _as_postgres(args: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class OwnPostgres:
    """A PostgreSQL cluster of the test's own (initdb), stopped and started at will."""

    def __init__(self, directory: Path) -> None:
        need_binary(str(PG_BIN / "initdb"))
        self.dir = directory / "pgdata"
        self.port = free_port()
        self.log = directory / "postgres.log"
        directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(directory, user.pw_uid, user.pw_gid)
        subprocess.run(
            _as_postgres(
                [str(PG_BIN / "initdb"), "-D", str(self.dir), "-U", "postgres", "-A", "trust"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=60"
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.dir),
                    "-l",
                    str(self.log),
                    "-o",
                    opts,
                    "-w",
                    "start",
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        subprocess.run(
            _as_postgres(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.dir), "-m", "immediate", "-w", "stop"]
            ),
            check=False,
            stdout=subprocess.DEVNULL,
        )


RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results" / "faults.json"


def record_result(test: str, **figures: object) -> None:
    """With WRITE_FAULT_RESULTS=1, keep what this fault test saw in docs/results/faults.json
    (docs/faults.md quotes it). Off by default: a test run does not rewrite the docs."""
    if os.environ.get("WRITE_FAULT_RESULTS") != "1":
        return
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[test] = {"recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures}
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"
