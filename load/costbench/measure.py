"""One measured wrk phase: CPU (the service's, PostgreSQL's, Redis's), PostgreSQL, Redis and app
counters before and after."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from load import proc
from load.costbench import fixtures, servers, wrk
from load.harness import Stack

# After a run, backends flush their statistics within about a second of going idle.
PG_SETTLE_SECONDS = 2.0


@dataclass(frozen=True)
class Phase:
    name: str
    path: str  # first request path, for the record
    request_lua: str
    lines: Callable[[int], list[str]]  # round -> data lines (rotated by wrk)


@dataclass(frozen=True)
class Row:
    round: int
    phase: str
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    web_cpu_us: float
    total_cpu_us: float
    pg_cpu_us: float  # the database's backends (NaN: not visible from here)
    redis_cpu_us: float  # the private redis-server (NaN: a claimed db of a shared server)
    pg_xacts_per_req: float  # raw pg_stat_database delta per request
    pg_xacts_net_per_req: float  # less the idle background rate (admitters, caches)
    db_statements_per_req: float  # the app's own statement counter
    redis_cmds_per_req: float  # INFO commandstats delta (the benchmark's Redis only)
    from_memory: float  # share of polls answered from the snapshot (polls only)
    wrapped: bool  # more requests than data lines: some lines were reused


def scrape(base_url: str) -> dict[str, float]:
    """App counters summed over processes (multiprocess /metrics)."""
    text = httpx.get(f"{base_url}/metrics", timeout=30).text
    wanted = {
        "db_query_duration_seconds_count": "db",
        "waitingroom_polls_total": "polls",
        "waitingroom_polls_from_memory_total": "memory",
    }
    out = dict.fromkeys(wanted.values(), 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                out[wanted[sample.name]] += sample.value
    return out


def service_cpu(stack: Stack) -> tuple[float, float]:
    """(web CPU seconds, total CPU seconds with the workers and the launcher) so far; the
    workers' reaped children (work horses) count too."""
    web = proc.cpu_seconds(stack.web_pids())
    others = proc.cpu_seconds([*stack.launcher_pids(), *stack.worker_pids()], reaped_children=True)
    return web, web + others


def _per_request_us(seconds: float | None, requests: int) -> float:
    return math.nan if seconds is None else round(seconds / requests * 1e6, 1)


async def idle_xact_rate(service: Stack, seconds: float = 5.0) -> float:
    """PostgreSQL transactions per second while no request arrives (and our own reads)."""
    before = await fixtures.pg_xacts(service.database_url)
    started = time.monotonic()
    await asyncio.sleep(seconds)
    await asyncio.sleep(PG_SETTLE_SECONDS)
    after = await fixtures.pg_xacts(service.database_url)
    return (after - before) / (time.monotonic() - started)


def run_phase(
    service: Stack,
    phase: Phase,
    round_index: int,
    workdir: Path,
    *,
    threads: int,
    connections: int,
    seconds: float,
    idle_rate: float,
) -> Row:
    lines = phase.lines(round_index)
    data = fixtures.write_lines(workdir / f"{phase.name}-{round_index}.txt", lines)
    script = workdir / f"{phase.name}.lua"
    wrk.write_script(script, data, phase.request_lua, threads)
    pg_before = asyncio.run(fixtures.pg_xacts(service.database_url))
    pg_started = time.monotonic()
    redis_before = asyncio.run(fixtures.redis_commands(service.redis_url))
    app_before = scrape(service.base_url)
    pg0 = asyncio.run(servers.pg_backend_cpu(service.database_url))
    redis0 = servers.redis_cpu(service.redis_pid)
    web0, total0 = service_cpu(service)
    result = wrk.run(
        service.base_url, script, threads=threads, connections=connections, seconds=seconds
    )
    web1, total1 = service_cpu(service)
    redis1 = servers.redis_cpu(service.redis_pid)
    pg1 = asyncio.run(servers.pg_backend_cpu(service.database_url))
    app_after = scrape(service.base_url)
    redis_after = asyncio.run(fixtures.redis_commands(service.redis_url))
    time.sleep(PG_SETTLE_SECONDS)
    pg_after = asyncio.run(fixtures.pg_xacts(service.database_url))
    pg_elapsed = time.monotonic() - pg_started
    n = max(1, result.requests)
    pg_delta = pg_after - pg_before
    polls = app_after["polls"] - app_before["polls"]
    return Row(
        round=round_index,
        phase=phase.name,
        requests=result.requests,
        rps=round(result.rps, 1),
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        non2xx=result.non2xx,
        socket_errors=result.socket_errors,
        web_cpu_us=round((web1 - web0) / n * 1e6, 1),
        total_cpu_us=round((total1 - total0) / n * 1e6, 1),
        pg_cpu_us=_per_request_us(servers.pg_cpu_delta(pg0, pg1), n),
        redis_cpu_us=_per_request_us(
            None if redis0 is None or redis1 is None else redis1 - redis0, n
        ),
        pg_xacts_per_req=round(pg_delta / n, 4),
        pg_xacts_net_per_req=round(max(0.0, pg_delta - idle_rate * pg_elapsed) / n, 4),
        db_statements_per_req=round((app_after["db"] - app_before["db"]) / n, 4),
        redis_cmds_per_req=round((sum(redis_after.values()) - sum(redis_before.values())) / n, 2),
        from_memory=round((app_after["memory"] - app_before["memory"]) / polls, 3)
        if polls
        else 0.0,
        wrapped=result.requests > len(lines),
    )
