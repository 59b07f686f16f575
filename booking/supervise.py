"""A child process of `make run` that is started again, with backoff, whenever it exits.

The delay doubles from `base` to `cap` while the child keeps dying young, and falls back to
`base` once a start has lived `healthy_after` seconds. `clock` is injectable for tests.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


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
