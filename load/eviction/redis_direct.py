"""Redis's own maxmemory eviction, measured live: allkeys-lru against allkeys-lfu.

Starts a private redis-server on a free loopback port (never the shared 6379 instance), with no
persistence and a small `maxmemory`, runs the same seeded Zipf cache-aside workload under each
policy (GET; on a miss SET a ~2 KB seat-map value), reads INFO stats (keyspace_hits,
keyspace_misses, evicted_keys), replays the same key sequence through the simulator at the number of
keys Redis held, writes docs/results/eviction_redis.{md,csv} and stops the server. Bounded in
requests and seconds.

    python -m load.eviction.redis_direct --out docs/results
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import time
from collections.abc import Sequence
from pathlib import Path

import redis

from load.eviction import workloads
from load.eviction.sim import intern_keys, simulate
from load.harness import private_redis

POLICIES = ("allkeys-lru", "allkeys-lfu")
SIMULATED = ("lru", "lfu", "s3fifo", "wtinylfu", "opt")


def run_policy(
    client: redis.Redis, policy: str, keys: Sequence[str], value: bytes, deadline_s: float
) -> dict[str, float]:
    client.flushall()
    client.config_set("maxmemory-policy", policy)
    client.config_resetstat()
    started = time.perf_counter()
    done = 0
    for key in keys:  # cache-aside, one request at a time, as the app's seat cache does
        if client.get(key) is None:
            client.set(key, value)
        done += 1
        if done % 1000 == 0 and time.perf_counter() - started > deadline_s:
            break
    elapsed = time.perf_counter() - started
    stats = client.info("stats")
    memory = client.info("memory")
    hits, misses = int(stats["keyspace_hits"]), int(stats["keyspace_misses"])
    return {
        "requests": done,
        "hits": hits,
        "misses": misses,
        "hit_ratio": hits / max(1, hits + misses),
        "evicted_keys": int(stats["evicted_keys"]),
        "resident_keys": int(client.dbsize()),
        "used_memory": int(memory["used_memory"]),
        "seconds": elapsed,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m load.eviction.redis_direct", description=__doc__
    )
    parser.add_argument("--out", type=Path, default=Path("docs/results"))
    parser.add_argument("--requests", type=int, default=60_000)
    parser.add_argument("--keys", type=int, default=20_000, help="distinct seat-map keys")
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--value-bytes", type=int, default=2_048)
    parser.add_argument("--maxmemory-mb", type=float, default=8.0)
    parser.add_argument("--deadline", type=float, default=90.0, help="seconds per policy, at most")
    parser.add_argument("--port", type=int, default=0, help="for the private server; 0: any free")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    keys = [
        f"seats:{k[1:]}" for k in workloads.zipf(args.requests, args.keys, args.alpha, args.seed)
    ]
    value = (b'{"seats":[' + b"0" * args.value_bytes)[: args.value_bytes]
    maxmemory = int(args.maxmemory_mb * 1024 * 1024)
    print(f"private redis-server, maxmemory {maxmemory:,} bytes", flush=True)
    measured: dict[str, dict[str, float]] = {}
    with private_redis(maxmemory, args.port or None) as client:
        version = str(client.info("server")["redis_version"])
        for policy in POLICIES:
            measured[policy] = m = run_policy(client, policy, keys, value, args.deadline)
            print(
                f"  {policy}: hit ratio {m['hit_ratio']:.4f}, evicted {m['evicted_keys']:,}, "
                f"{m['resident_keys']:,} keys resident ({m['seconds']:.1f}s)",
                flush=True,
            )
    n = int(min(m["requests"] for m in measured.values()))
    capacity = int(min(m["resident_keys"] for m in measured.values()))
    ids, _ = intern_keys(keys[:n])
    simulated = {p: simulate(p, capacity, ids).hit_ratio for p in SIMULATED}
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "eviction_redis.csv").open("w", newline="") as f:
        w = csv.writer(f)
        cols = ["requests", "hits", "misses", "hit_ratio", "evicted_keys", "resident_keys",
                "used_memory", "seconds"]  # fmt: skip
        w.writerow(["policy", *cols])
        for policy, m in measured.items():
            w.writerow([policy, *(m[c] if c != "hit_ratio" else f"{m[c]:.6f}" for c in cols)])
    lru, lfu = measured["allkeys-lru"]["hit_ratio"], measured["allkeys-lfu"]["hit_ratio"]
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Redis maxmemory-policy: allkeys-lru vs allkeys-lfu",
        "",
        f"Regenerate with `python -m load.eviction.redis_direct --out {args.out}` (starts and"
        " stops its own redis-server; about a minute).",
        "",
        f"- date: {now}; Redis {version} (private instance, `--save '' --appendonly no`, "
        f"maxmemory {maxmemory:,} bytes, defaults otherwise: maxmemory-samples 5, "
        "lfu-log-factor 10, lfu-decay-time 1)",
        f"- workload: cache-aside (GET; on a miss SET a {args.value_bytes:,}-byte value), "
        f"Zipf alpha={args.alpha} over {args.keys:,} `seats:<id>` keys, {n:,} requests, "
        f"seed {args.seed}, one request at a time from one client; counts from INFO stats",
        "",
        "| policy | requests | hits | misses | hit ratio | evicted_keys | keys resident at end "
        "| used_memory | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {p} | {m['requests']:,} | {m['hits']:,} | {m['misses']:,} | {m['hit_ratio']:.4f} "
            f"| {m['evicted_keys']:,} | {m['resident_keys']:,} | {m['used_memory']:,} "
            f"| {m['seconds']:.1f} |"
            for p, m in measured.items()
        ),
        "",
        f"The same {n:,} keys through the simulator at capacity {capacity:,} (the smaller "
        "number of keys Redis held), exact policies instead of Redis's sampled approximations:",
        "",
        "| simulated policy | hit ratio |",
        "|---|---|",
        *(f"| {p} | {r:.4f} |" for p, r in simulated.items()),
        "",
        "Redis approximates both policies by sampling 5 keys per eviction (no exact LRU list), and "
        "its LFU counter is logarithmic (8 bits) and decays by one per idle minute. Measured here: "
        f"allkeys-lfu minus allkeys-lru = {100 * (lfu - lru):+.2f} pp of hit ratio; "
        f"simulated lfu minus lru = {100 * (simulated['lfu'] - simulated['lru']):+.2f} pp.",
        "",
    ]
    report = args.out / "eviction_redis.md"
    report.write_text("\n".join(lines))
    print(f"results: {report}, {args.out / 'eviction_redis.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
