"""`make run`'s launcher stops everything it started when SIGTERM is sent to it alone (as a
process manager or `kill <pid>` does): web processes, RQ workers, the dashboard; it exits 0 and
the port closes. Real processes: `python -m booking.run` against the test database and Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, free_port, service_env, wait_ready

DEADLINE_SECONDS = 30.0


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a live process; None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = stat[1]
    found: set[int] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        kids = [child for child, parent in parents.items() if parent == current]
        found.update(kids)
        todo.extend(kids)
    return found


def running(pid: int) -> bool:
    # An orphan's zombie waits for whoever reaps orphans here: it runs no more.
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_sigterm_to_the_launcher_alone_stops_every_child(database_url: str, redis_url: str) -> None:
    port = free_port()
    launcher = subprocess.Popen(
        [sys.executable, "-m", "booking.run"],
        cwd=ROOT,
        env=service_env(
            PORT=str(port),
            WEB_CONCURRENCY="2",
            WORKERS="2",
            RQ_DASHBOARD_PORT=str(free_port()),
            WORKER_METRICS_PORT="0",
            DB_POOL_MAX="2",
        ),
        start_new_session=True,  # a group of its own: the test can clean up if it fails
    )
    children: set[int] = set()
    try:
        wait_ready(f"http://127.0.0.1:{port}", launcher)
        # Every child is up: the uvicorn master with its 2 processes and 2 RQ workers at least.
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            children = descendants(launcher.pid)
            lines = [cmdline(pid) for pid in children]
            if sum("workers.run" in line for line in lines) >= 2 and len(children) >= 5:
                break
            assert time.monotonic() < deadline, f"children not all up: {lines}"
            time.sleep(0.1)

        os.kill(launcher.pid, signal.SIGTERM)  # the launcher only, not its group
        assert launcher.wait(timeout=DEADLINE_SECONDS) == 0

        deadline = time.monotonic() + DEADLINE_SECONDS
        while alive := [pid for pid in children if running(pid)]:
            assert time.monotonic() < deadline, f"still running: {[cmdline(p) for p in alive]}"
            time.sleep(0.1)
        assert not port_open(port)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
        for pid in children:  # only after a failure: leave nothing behind
            if running(pid):
                os.kill(pid, signal.SIGKILL)
