"""The old name of load/harness.py, kept only so code written against it keeps running while
other branches merge; new code imports load.harness. `database` becomes the experiment name (a
unique database is created and dropped) and `redis_db` is ignored (the harness gives each run a
Redis of its own): nothing fixed is flushed or dropped any more.
"""

from __future__ import annotations

from load.harness import ROOT, free_port, machine
from load.harness import Stack as _Stack

__all__ = ["ROOT", "Stack", "free_port", "machine"]


class Stack(_Stack):
    def __init__(
        self,
        database: str,
        redis_db: int | None = None,
        env: dict[str, str] | None = None,
        workers: int = 1,
        port: int | None = None,
    ) -> None:
        super().__init__(database.removeprefix("ticketing_"), env=env, workers=workers)
