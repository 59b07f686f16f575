"""Stopping child processes the caller started: SIGTERM, a bounded wait, then SIGKILL."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterable

# After SIGKILL a process is reaped at once; the bound only keeps a stuck one (D state) from
# hanging the caller.
KILLED_WAIT_SECONDS = 5.0


def stop_processes(procs: Iterable[subprocess.Popen[bytes]], timeout: float = 10.0) -> None:
    """SIGTERM every one still running, wait for all of them within one `timeout`, then SIGKILL
    (and reap) whatever is left. Only these processes: the caller started them."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=KILLED_WAIT_SECONDS)
