"""CPU spent by the servers behind the service during a phase: the PostgreSQL backends serving
the benchmark's database and the benchmark's own redis-server (utime+stime from /proc)."""

from __future__ import annotations

import asyncpg

from load import proc

# What the two columns include, for the report's notes.
NOTES = [
    "PostgreSQL CPU: utime+stime from /proc of the PostgreSQL backends serving the benchmark's "
    "database (client backends and their parallel workers, found in pg_stat_activity by "
    "database name, less the reading's own connection), sampled just before and just after "
    "each wrk run; a backend that connects during the phase counts in full, one that "
    "disconnects during it is not counted (the app's pools keep their connections). Not "
    "included: autovacuum and the server's shared background processes (checkpointer, WAL "
    "writer, background writer); the WAL flush a backend does at its own commit is included. "
    "n/a when PostgreSQL runs where /proc cannot see it.",
    "Redis CPU: utime+stime from /proc of the run's private redis-server (all its threads), "
    "over the same window; it includes the few commands of this script's own readings (INFO "
    "commandstats), and is n/a when --redis-url names a db of a shared server.",
]

# Client connections (the app's pools, workers, admitters) and the parallel workers their
# queries start; not autovacuum or the server's background processes (checkpointer, WAL writer).
_BACKENDS = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND backend_type IN ('client backend', 'parallel worker')
"""


async def pg_backend_cpu(database_url: str) -> dict[int, float] | None:
    """CPU seconds so far of each backend serving the database (not this reading's own), or
    None when their processes are not visible here (PostgreSQL on another host or container)."""
    conn = await asyncpg.connect(database_url)
    try:
        pids = [int(r["pid"]) for r in await conn.fetch(_BACKENDS)]
    finally:
        await conn.close()
    seconds = {pid: proc.cpu_seconds([pid]) for pid in pids if proc.running(pid)}
    if pids and not seconds:
        return None
    return seconds


def pg_cpu_delta(before: dict[int, float] | None, after: dict[int, float] | None) -> float | None:
    """CPU seconds the backends spent between two readings. A backend that connected in between
    counts in full; one that disconnected in between is lost (the app's pools keep theirs)."""
    if before is None or after is None:
        return None
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def redis_cpu(pid: int | None) -> float | None:
    """CPU seconds so far of the benchmark's own redis-server (all its threads), if known."""
    if pid is None or not proc.running(pid):
        return None
    return proc.cpu_seconds([pid])
