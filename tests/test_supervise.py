"""`make run` keeps its workers: a child that exits is started again after a backoff that doubles
while it keeps dying young and resets once it lived long enough (real processes, fake clock)."""

from __future__ import annotations

import subprocess
import sys
import time

from booking.supervise import Supervised

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
