"""`make run` keeps its workers: a child that exits is started again after a backoff that doubles
while it keeps dying young and resets once it lived long enough (real processes, fake clock);
stopping ends every child within a bound, and a stop signal never loses a child being started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from booking.supervise import StopRequested, StopSignals, Supervised, stop_all

WAIT_SECONDS = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def dies_at_once() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])


def wait_exit(child: Supervised) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while child.proc.poll() is None:
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.01)


def test_dead_child_restarts_with_doubling_then_reset_backoff() -> None:
    clock = Clock()
    child = Supervised("w", dies_at_once, base=1.0, cap=4.0, healthy_after=60.0, clock=clock)
    delays = []
    for _ in range(4):
        wait_exit(child)
        child.poll()  # notices the exit, schedules the restart
        assert child.restart_at is not None
        delays.append(child.restart_at - clock.now)
        starts = child.starts
        clock.now = child.restart_at - 0.01
        child.poll()
        assert child.starts == starts, "restarted before its backoff"
        clock.now = child.restart_at
        child.poll()
        assert child.starts == starts + 1
    assert delays == [1.0, 2.0, 4.0, 4.0]  # doubles, capped
    # A start that lived past healthy_after dies: the backoff is back at its base.
    clock.now += 61.0
    wait_exit(child)
    child.poll()
    assert child.restart_at is not None and child.restart_at - clock.now == 1.0


def test_live_child_is_left_alone() -> None:
    clock = Clock()
    sleeper = Supervised(
        "w",
        lambda: subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]),
        clock=clock,
    )
    try:
        clock.now = 100.0
        sleeper.poll()
        assert sleeper.starts == 1 and sleeper.restart_at is None
    finally:
        sleeper.proc.kill()
        sleeper.proc.wait()


def test_stop_all_kills_a_child_that_ignores_sigterm_and_what_it_started() -> None:
    # The child ignores SIGTERM and has a grandchild in its process group (like uvicorn's
    # worker processes or an RQ work horse).
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(g.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, process_group=0
    )
    assert child.stdout is not None
    grandchild = int(child.stdout.readline())
    try:
        stop_all([child], grace=0.2)
        assert child.returncode == -signal.SIGKILL
        deadline = time.monotonic() + WAIT_SECONDS
        while running(grandchild):
            assert time.monotonic() < deadline, "the grandchild outlived stop_all"
            time.sleep(0.01)
    finally:
        for pid in (child.pid, grandchild):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        child.wait()


def test_stop_all_lets_a_child_exit_on_sigterm() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    stop_all([child], grace=WAIT_SECONDS)
    assert child.returncode == -signal.SIGTERM


def test_a_stop_signal_while_a_child_starts_waits_until_it_is_kept() -> None:
    stop = StopSignals()
    saved = {s: signal.getsignal(s) for s in StopSignals.SIGNALS}
    stop.install()
    kept = False
    try:
        with pytest.raises(StopRequested), stop.deferred():
            # os.kill to this process runs the handler before it returns.
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.requested == signal.SIGTERM, "the handler ran, raising nothing yet"
            kept = True
        assert kept
        stop.disarm()
        os.kill(os.getpid(), signal.SIGINT)  # while stopping: noted, nothing raised
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # an orphan's zombie waits to be reaped: it runs no more
