"""The measured part of every costbench run: the service as `make run` serves it (on the
harness), warm-up, the idle PostgreSQL background, then every phase in each round, rotated so
that no phase always runs first (or right after the same one)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from load.costbench.measure import Phase, Row, idle_xact_rate, run_phase
from load.harness import LIMITS_OFF, LauncherStack, Stack

WARMUP_SECONDS = 8
WARMUP_RUNS = 8  # at most; stops once nearly every poll is answered from memory
# On top of the harness's LIMITS_OFF: wrk sends no proof of work, and the demo event is small.
SERVICE_ENV = {"POW_DIFFICULTY": "0", "DEMO_SEATS": "300"}


@dataclass(frozen=True)
class Options:
    redis_url: str | None  # an empty db to claim; None: a private redis-server (the harness's)
    rounds: int
    seconds: float
    connections: int
    threads: int
    web_processes: int
    workers: int
    join_users_per_round: int
    holds_per_round: int


def limits_off() -> dict[str, str]:
    """What the run turns off, for the report."""
    return {**LIMITS_OFF, "POW_DIFFICULTY": SERVICE_ENV["POW_DIFFICULTY"]}


def service(opts: Options, env: dict[str, str] | None = None) -> LauncherStack:
    """`python -m booking.run` on a database and Redis of the run's own (load/harness.py)."""
    return LauncherStack(
        "costbench",
        env={**SERVICE_ENV, **(env or {})},
        workers=opts.workers,
        redis_url=opts.redis_url,
        web_processes=opts.web_processes,
    )


def _measure(stack: Stack, phase: Phase, r: int, workdir: Path, opts: Options, idle: float) -> Row:
    return run_phase(
        stack,
        phase,
        r,
        workdir,
        threads=opts.threads,
        connections=opts.connections,
        seconds=opts.seconds,
        idle_rate=idle,
    )


def warm(stack: Stack, phase: Phase, workdir: Path, opts: Options) -> None:
    """Poll until every web process has seen every ticket (the first poll is exact)."""
    warm_opts = dataclasses.replace(opts, seconds=WARMUP_SECONDS)
    for _ in range(WARMUP_RUNS):
        row = _measure(stack, phase, -1, workdir, warm_opts, 0.0)
        print(f"costbench: warm-up of {phase.name}: {row.from_memory:.0%} from memory", flush=True)
        if row.from_memory >= 0.995:
            return


def rotated(phases: Sequence[Phase], r: int) -> list[Phase]:
    k = r % len(phases)
    return [*phases[k:], *phases[:k]]


def measure_rounds(
    stack: Stack,
    phases: Sequence[Phase],
    opts: Options,
    workdir: Path,
    *,
    warm_up: Sequence[Phase] = (),
    after_phase: Callable[[Phase], None] | None = None,
) -> tuple[list[Row], float]:
    """Warm `warm_up` up, measure the idle transaction rate, then `opts.rounds` rotated rounds
    (`after_phase` runs after each phase, e.g. to reset a queue). Returns the rows and the
    idle rate."""
    for phase in warm_up:
        warm(stack, phase, workdir, opts)
    idle = asyncio.run(idle_xact_rate(stack))
    rows: list[Row] = []
    for r in range(opts.rounds):
        for phase in rotated(phases, r):
            row = _measure(stack, phase, r, workdir, opts, idle)
            rows.append(row)
            print(
                f"round {r} {row.phase:10s} {row.rps:8.0f} req/s  web {row.web_cpu_us:7.0f} µs"
                f"  total {row.total_cpu_us:7.0f} µs  pg {row.pg_cpu_us:6.0f} µs"
                f"  redis {row.redis_cpu_us:5.0f} µs  p99 {row.p99_ms:6.1f} ms"
                f"  pg xacts {row.pg_xacts_net_per_req:.3f}  non2xx {row.non2xx}",
                flush=True,
            )
            if after_phase is not None:
                after_phase(phase)
    return rows, idle


def meta(opts: Options, idle: float, phases: Sequence[Phase], **more: Any) -> dict[str, Any]:
    """What the report says about the run."""
    return {
        "web_processes": opts.web_processes,
        "workers": opts.workers,
        "connections": opts.connections,
        "threads": opts.threads,
        "seconds": opts.seconds,
        "rounds": opts.rounds,
        "idle_pg_xacts_per_second": round(idle, 2),
        "paths": {p.name: p.path for p in phases},
        **more,
    }
