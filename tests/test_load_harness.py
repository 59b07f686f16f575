"""The load harness's `make run` mode and costbench's server CPU readings, with real processes:
LauncherStack serves `python -m booking.run` on a database and a redis-server of its own, names
its web, worker and launcher processes, and leaves nothing behind; the PostgreSQL reading counts
the CPU of the backends serving a database and nothing else's."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import httpx
import pytest

from booking.db import with_database
from load import proc
from load.costbench import servers
from load.harness import PG_BASE, LauncherStack, own_database, unique_name


async def database_exists(name: str) -> bool:
    conn = await asyncpg.connect(with_database(PG_BASE, "postgres"))
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


@pytest.mark.skipif(bool(os.environ.get("LOAD_REDIS_URL")), reason="needs a private redis-server")
def test_launcher_stack_serves_like_make_run_and_leaves_nothing_behind() -> None:
    stack = LauncherStack(
        "harness test", env={"DEMO_SEATS": "10", "DB_POOL_MAX": "2"}, workers=1, web_processes=2
    )
    with stack:
        assert httpx.get(f"{stack.base_url}/readyz", timeout=10).status_code == 200
        web, workers, launcher = stack.web_pids(), stack.worker_pids(), stack.launcher_pids()
        # The uvicorn master (first) and the processes it spawned (its two workers, and
        # multiprocessing's helper); one RQ worker; the launcher itself.
        assert len(web) >= 3 and b"uvicorn" in proc.cmdline(web[0])
        assert workers and b"workers.run" in proc.cmdline(workers[0])
        assert launcher and b"booking.run" in proc.cmdline(launcher[0])
        assert stack.redis_pid is not None and b"redis-server" in proc.cmdline(stack.redis_pid)
        redis_pid = stack.redis_pid
        assert asyncio.run(database_exists(stack.database))
    started = [*web, *workers, *launcher, redis_pid]
    assert not [p for p in started if proc.running(p)], "a process outlived the stack"
    assert not asyncio.run(database_exists(stack.database)), "the database was not dropped"


def test_pg_backend_cpu_counts_the_backends_serving_the_database() -> None:
    async def scenario(url: str) -> float | None:
        busy = await asyncpg.connect(url)
        try:
            pid = int(await busy.fetchval("SELECT pg_backend_pid()"))
            before = await servers.pg_backend_cpu(url)
            # Enough work for many clock ticks of CPU in that backend.
            await busy.fetchval("SELECT count(*) FROM generate_series(1, 5000000)")
            after = await servers.pg_backend_cpu(url)
        finally:
            await busy.close()
        assert before is not None and after is not None
        assert set(before) == set(after) == {pid}, "only the busy backend, not the readings'"
        return servers.pg_cpu_delta(before, after)

    with own_database(unique_name("pgcpu")) as url:
        delta = asyncio.run(scenario(url))
    assert delta is not None and delta > 0


def test_pg_cpu_delta_counts_a_backend_that_connected_in_between_in_full() -> None:
    assert servers.pg_cpu_delta({1: 2.0}, {1: 2.5, 7: 0.25}) == 0.75
    assert servers.pg_cpu_delta(None, {1: 1.0}) is None
