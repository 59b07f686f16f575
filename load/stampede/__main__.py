"""The cache-stampede experiment: every seat-cache strategy under the same hot-key load.

    .venv/bin/python -m load.stampede            # all strategies, both variants (~15 minutes)
    .venv/bin/python -m load.stampede --strategies ttl,lock --variants reads --duration 10

For each variant (`reads`: readers only; `holds`: plus bookings that invalidate the map) and
each strategy it starts the real server (load/harness.py: uvicorn on a free port, a database and
a Redis of the run's own) with SEAT_CACHE_STRATEGY and SEAT_QUERY_DELAY_MS set, creates one
event with a large seat map, drives it (load/stampede/workload.py), and stops it. Then
load/stampede/analysis.py turns the raw data into the figures, load/stampede/jitter.py runs the
many-keys TTL-jitter experiment, and load/stampede/report.py writes CSVs, PNGs and
docs/results/stampede.md.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from booking.cache import STRATEGIES
from load.harness import RESULTS, Stack, create_event, machine
from load.stampede import jitter, report
from load.stampede.analysis import Summary, median_summary, summarize
from load.stampede.workload import RunData, Workload, run

VARIANTS = ("reads", "holds")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--duration", type=float, default=25.0, help="seconds per strategy and variant")
    p.add_argument("--readers", type=int, default=200, help="closed-loop reader tasks")
    p.add_argument("--think", type=float, default=1.5, help="mean pause between a reader's reads")
    p.add_argument("--ttl", type=float, default=2.0, help="SEAT_CACHE_TTL_SECONDS")
    p.add_argument("--stale-bound", type=float, default=4.0, help="SEAT_CACHE_STALE_BOUND_SECONDS")
    p.add_argument("--delay-ms", type=int, default=200, help="SEAT_QUERY_DELAY_MS (pg_sleep)")
    p.add_argument("--db-pool", type=int, default=20, help="DB_POOL_MAX")
    p.add_argument("--rows", type=int, default=40)
    p.add_argument("--seats-per-row", type=int, default=50)
    p.add_argument("--holds-per-second", type=float, default=2.0)
    p.add_argument("--repeat", type=int, default=2, help="runs per strategy; tables show medians")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--skip-jitter", action="store_true", help="not the many-keys jitter part")
    jitter.add_arguments(p)
    return p.parse_args(argv)


def server_env(args: argparse.Namespace, strategy: str) -> dict[str, str]:
    return {
        "SEAT_CACHE_STRATEGY": strategy,
        "SEAT_CACHE_TTL_SECONDS": str(args.ttl),
        "SEAT_CACHE_STALE_BOUND_SECONDS": str(args.stale_bound),
        "SEAT_QUERY_DELAY_MS": str(args.delay_ms),
        "SEAT_CACHE_CAPACITY": "0",
        "DB_POOL_MAX": str(args.db_pool),
        "ADMITTER_ENABLED": "0",
        "HOLD_SECONDS": "600",
    }


async def prepare_event(stack: Stack, args: argparse.Namespace) -> tuple[int, list[int], str]:
    """One on-sale event without a waiting room, its seat ids, and a buyer's token."""
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as client:
        event = await create_event(
            client, name="Stampede", rows=args.rows, seats_per_row=args.seats_per_row
        )
        user = await client.post(
            "/api/users", json={"name": "Booker", "email": f"booker.{event.id}@example.com"}
        )
    return event.id, event.seat_ids, str(user.raise_for_status().json()["token"])


def run_one(args: argparse.Namespace, variant: str, strategy: str) -> RunData:
    with Stack("stampede", env=server_env(args, strategy), workers=0) as stack:
        event_id, seat_ids, token = asyncio.run(prepare_event(stack, args))
        holds = args.holds_per_second if variant == "holds" else 0.0
        workload = Workload(args.readers, args.duration, args.think, holds)
        return asyncio.run(run(stack.base_url, strategy, event_id, workload, seat_ids, token))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    strategies = [s for s in args.strategies.split(",") if s]
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(strategies) - set(STRATEGIES) | set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown strategies/variants: {', '.join(sorted(unknown))}")
    args.out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).replace(microsecond=0).isoformat()
    runs: dict[tuple[str, str], RunData] = {}  # first run of each: for the timeline plot
    every: dict[tuple[str, str], list[Summary]] = {}
    total = len(strategies) * len(variants) * args.repeat
    n = 0
    for rep in range(args.repeat):
        for variant in variants:
            for strategy in strategies:
                n += 1
                tag = f"[{n}/{total}] {variant}/{strategy} run {rep + 1}"
                print(f"{tag}: {args.duration:.0f} s ...", flush=True)
                t = time.monotonic()
                try:
                    data = run_one(args, variant, strategy)
                except Exception as exc:  # one broken run must not lose the others
                    print(f"{tag}: FAILED: {exc!r}", flush=True)
                    continue
                runs.setdefault((variant, strategy), data)
                s = summarize(data, variant, args.duration, args.ttl)
                every.setdefault((variant, strategy), []).append(s)
                print(
                    f"{tag}: {s.throughput:.0f} reads/s, {s.errors} errors, loads/expiry mean"
                    f" {s.loads_per_expiry_mean:.1f} max {s.loads_per_expiry_max},"
                    f" p99 {s.p99 * 1000:.0f} ms (at expiry {s.p99_at_expiry * 1000:.0f} ms),"
                    f" {s.stale_reads} stale, load avg {s.loadavg:.1f}"
                    f" ({time.monotonic() - t:.0f} s)",
                    flush=True,
                )
    summaries = [
        median_summary(every[v, s]) for v in variants for s in strategies if (v, s) in every
    ]
    params: dict[str, Any] = {
        "date": started,
        "duration_s": args.duration,
        "readers": args.readers,
        "think_s": args.think,
        "ttl_s": args.ttl,
        "stale_bound_s": args.stale_bound,
        "query_delay_ms": args.delay_ms,
        "db_pool_max": args.db_pool,
        "seats": args.rows * args.seats_per_row,
        "holds_per_s": args.holds_per_second,
        "app": "1 uvicorn process",
        "repeat": args.repeat,
    }
    files = report.write_csvs(args.out, summaries, every, runs)
    files.append(report.plot_timelines(args.out, runs, variants, strategies))
    files.append(report.plot_latency(args.out, summaries, variants))
    files.append(report.plot_loads_per_expiry(args.out, summaries, variants))
    command = " ".join(
        [".venv/bin/python -m load.stampede", shlex.join(sys.argv[1:] if argv is None else argv)]
    ).rstrip()
    jitter_lines: list[str] = []
    if not args.skip_jitter:
        jitter_lines, jitter_files = jitter.run(args, args.out)
        files += jitter_files
    md = report.write_markdown(
        args.out, summaries, every, variants, params, machine(), command, files, jitter_lines
    )
    print(f"results: {md}", *(f"         {p}" for p in files), sep="\n")


if __name__ == "__main__":
    main()
