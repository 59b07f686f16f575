"""A child process of `make run` that is started again, with backoff, whenever it exits.

The delay doubles from `base` to `cap` while the child keeps dying young, and falls back to
`base` once a start has lived `healthy_after` seconds. `clock` is injectable for tests.

Stopping: `StopSignals` turns SIGTERM/SIGINT/SIGHUP into an exception in the launcher's main
loop, and `stop_all` stops every child within a bound (terminate, wait, then kill the group).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

log = logging.getLogger(__name__)
# How long stopping children may wait for them before it kills them.
STOP_GRACE_SECONDS = 10.0


class Supervised:
    def __init__(
        self,
        name: str,
        start: Callable[[], subprocess.Popen[Any]],
        *,
        base: float = 1.0,
        cap: float = 30.0,
        healthy_after: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._start = start
        self.base, self.cap, self.healthy_after = base, cap, healthy_after
        self._clock = clock
        self.delay = base
        self.starts = 0
        self.restart_at: float | None = None
        self.proc = self._launch()

    def _launch(self) -> subprocess.Popen[Any]:
        self.started_at = self._clock()
        self.starts += 1
        return self._start()

    def poll(self) -> None:
        """Notice an exit and schedule the restart; restart when it is due."""
        now = self._clock()
        if self.restart_at is None:
            code = self.proc.poll()
            if code is None:
                return
            if now - self.started_at >= self.healthy_after:
                self.delay = self.base
            self.restart_at = now + self.delay
            print(f"{self.name} exited with {code}; restarting in {self.delay:g}s", flush=True)
            self.delay = min(self.cap, self.delay * 2)
        if now >= self.restart_at:
            self.restart_at = None
            self.proc = self._launch()


class StopRequested(Exception):
    """Raised in the launcher's main thread by SIGTERM, SIGINT or SIGHUP."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """SIGTERM, SIGINT and SIGHUP raise StopRequested in the main thread, once, and never in the
    middle of starting a child (inside `deferred()` the request waits until the child's handle
    is kept): a child started but not yet recorded would outlive the launcher."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

    def __init__(self) -> None:
        self.requested: int | None = None
        self._armed = True
        self._deferring = 0

    def install(self) -> None:
        for signum in self.SIGNALS:
            signal.signal(signum, self._handle)

    def disarm(self) -> None:
        """From here on signals are only noted (the launcher is already stopping)."""
        self._armed = False

    def _handle(self, signum: int, frame: object) -> None:
        first = self.requested is None
        self.requested = signum if first else self.requested
        if first and self._armed and not self._deferring:
            raise StopRequested(signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
        if self.requested is not None and self._armed and not self._deferring:
            raise StopRequested(self.requested)


def stop_all(procs: Sequence[subprocess.Popen[Any]], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM each child, wait for them all up to `grace` seconds in total, then SIGKILL the
    process group of each (its own group: started with process_group=0), so what a child had
    started itself (uvicorn's worker processes, a work horse) goes too, and reap them."""
    for proc in procs:
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    for proc in procs:
        # The leader may be gone while members of its group remain: kill the group either way.
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    for proc in procs:
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)  # SIGKILLed: only a process stuck in the kernel outlasts this
