"""Redis `maxmemory` eviction measured through the running server: allkeys-lru vs allkeys-lfu.

For each policy: a private redis-server (never the shared 6379 instance) with a small
`maxmemory`, the real app (load/harness.py, a fresh database) pointed at it with the `ttl` seat
cache and a TTL long enough that only eviction (not expiry) causes misses, many events, and the
same seeded Zipf sequence of seat-map reads over them. Records the app's view (X-Cache: hit or
load) and Redis's own INFO stats (evicted_keys, keyspace_hits/misses; these also count the
cache's invalidation-watermark lookups, one per read, which mostly miss: read them as
evictions, not as a hit ratio). Bounded in requests and seconds.

    .venv/bin/python -m load.eviction.redis_server --out docs/results
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from load.eviction import workloads
from load.harness import Stack, create_event, machine, private_redis

POLICIES = ("allkeys-lru", "allkeys-lfu")
CONCURRENCY = 16


async def create_events(stack: Stack, n: int, rows: int, per_row: int) -> list[int]:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
        return [
            (
                await create_event(
                    http,
                    name=f"Zipf event {i}",
                    rows=rows,
                    seats_per_row=per_row,
                    price=1,
                    with_seats=False,
                )
            ).id
            for i in range(n)
        ]


async def read_maps(base_url: str, paths: list[str], deadline_s: float) -> dict[str, int]:
    counts: dict[str, int] = {}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for p in paths:
        queue.put_nowait(p)
    stop_at = time.monotonic() + deadline_s
    limits = httpx.Limits(max_connections=CONCURRENCY)

    async def reader(http: httpx.AsyncClient) -> None:
        while not queue.empty() and time.monotonic() < stop_at:
            r = await http.get(queue.get_nowait())
            key = f"status {r.status_code}" if r.status_code != 200 else r.headers["x-cache"]
            counts[key] = counts.get(key, 0) + 1

    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:
        await asyncio.gather(*(reader(http) for _ in range(CONCURRENCY)))
    return counts


def run_policy(policy: str, args: argparse.Namespace, ranks: list[int]) -> dict[str, Any]:
    # Cap what the cache may use: the server's own baseline plus the budget.
    with private_redis() as client:
        port = client.connection_pool.connection_kwargs["port"]
        client.config_set("maxmemory-policy", policy)
        env = {
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "SEAT_CACHE_STRATEGY": "ttl",
            "SEAT_CACHE_TTL_SECONDS": "3600",
            "SEAT_CACHE_STALE_BOUND_SECONDS": "3600",
            "SEAT_CACHE_CAPACITY": "0",
            "ADMITTER_ENABLED": "0",
            "WORKER_METRICS_PORT": "0",
        }
        with Stack("redis_eviction", env=env, workers=0, redis_url=env["REDIS_URL"]) as stack:
            events = asyncio.run(create_events(stack, args.events, args.rows, args.seats_per_row))
            baseline = int(client.info("memory")["used_memory"])
            client.config_set("maxmemory", baseline + int(args.budget_mb * 1024 * 1024))
            client.config_resetstat()
            paths = [f"/api/events/{events[r]}/seats" for r in ranks]
            started = time.perf_counter()
            counts = asyncio.run(read_maps(stack.base_url, paths, args.deadline))
            elapsed = time.perf_counter() - started
        stats = client.info("stats")
        requests = sum(counts.values())
        return {
            "policy": policy,
            "requests": requests,
            "app_hits": counts.get("hit", 0),
            "app_loads": counts.get("load", 0) + counts.get("miss", 0),
            "app_hit_ratio": counts.get("hit", 0) / max(1, requests),
            "errors": sum(v for k, v in counts.items() if k.startswith("status")),
            "evicted_keys": int(stats["evicted_keys"]),
            "keyspace_hits": int(stats["keyspace_hits"]),
            "keyspace_misses": int(stats["keyspace_misses"]),
            "resident_keys": int(client.dbsize()),
            "maxmemory": baseline + int(args.budget_mb * 1024 * 1024),
            "seconds": round(elapsed, 1),
        }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load.eviction.redis_server")
    parser.add_argument("--out", type=Path, default=Path("docs/results"))
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--rows", type=int, default=5)
    parser.add_argument("--seats-per-row", type=int, default=20)
    parser.add_argument("--requests", type=int, default=6_000)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--budget-mb", type=float, default=0.6, help="maxmemory above baseline")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds per policy, max")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    ranks = [int(k[1:]) for k in workloads.zipf(args.requests, args.events, args.alpha, args.seed)]
    rows = []
    for policy in POLICIES:
        print(
            f"{policy}: {args.events} events, {args.requests} Zipf({args.alpha}) reads", flush=True
        )
        row = run_policy(policy, args, ranks)
        print(
            f"  app hit ratio {row['app_hit_ratio']:.4f}, evicted {row['evicted_keys']}, "
            f"{row['resident_keys']} keys resident, {row['errors']} errors",
            flush=True,
        )
        rows.append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "eviction_redis_server.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    m = machine()
    lines = [
        "# Redis maxmemory through the server: allkeys-lru vs allkeys-lfu",
        "",
        f"- date: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}",
        f"- machine: {m['cpu']}, {m['cores']} cores shared by the load client, the app, PostgreSQL"
        f" and Redis; Python {m['python']}; 1-minute load average before {m['loadavg_1m']}",
        "- command: `.venv/bin/python -m load.eviction.redis_server --out docs/results`",
        f"- parameters: {args.events} events of {args.rows * args.seats_per_row} seats, "
        f"{args.requests} seat-map reads, Zipf alpha {args.alpha} (seed {args.seed}), "
        f"{CONCURRENCY} concurrent readers, maxmemory = server baseline + {args.budget_mb} MB, "
        "seat cache `ttl` with a 1 h TTL (only eviction causes misses), one uvicorn process",
        "",
        "| policy | reads | app hit ratio (X-Cache) | database loads | Redis evicted_keys "
        "| keys resident at end | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['policy']} | {r['requests']} | {r['app_hit_ratio']:.4f} | {r['app_loads']} "
            f"| {r['evicted_keys']} | {r['resident_keys']} | {r['errors']} |"
        )
    lines += [
        "",
        "The app's hit ratio is the figure that matters: every miss is a PostgreSQL seat query. "
        "Redis's keyspace counters are in the CSV; they also count the cache's watermark lookup "
        "(one MGET slot per read), so they are not a hit ratio.",
    ]
    (args.out / "eviction_redis_server.md").write_text("\n".join(lines) + "\n")
    print(f"results: {args.out / 'eviction_redis_server.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
