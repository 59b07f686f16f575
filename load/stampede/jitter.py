"""Many keys, one TTL: does SEAT_CACHE_TTL_JITTER spread the recomputations?

At a sale's opening hundreds of seat maps are cached within a moment of each other. With one TTL
they all expire together, every TTL, and the database sees the whole set reloaded at once; with
jitter each value's lifetime is cut by a random fraction (up to `jitter`), so the expiries drift
apart. This runs the real strategy code (booking/cache, `lock` by default: one load per key per
expiry, so the only bursts left are those of many keys expiring together) on a private Redis:
`keys` values are loaded at t=0, then `readers` closed-loop readers read random keys for
`duration` seconds. The loader stands in for the seat query (a fixed `load_ms` sleep) and records
when each load began; the figure is loads per second over time, in 100 ms bins.

    .venv/bin/python -m load.stampede.jitter --jitter-keys 300   # also part of load.stampede
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from redis.asyncio import Redis

from booking.cache.base import CacheConfig, seat_map_key
from booking.cache.factory import REDIS_STRATEGIES
from load.harness import RESULTS, own_redis

BIN_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class JitterRun:
    jitter: float
    opening_loads: int  # the loads of the opening itself (every key once), not in load_starts
    load_starts: list[float]  # seconds since the opening load began
    reads: int
    duration: float

    def per_second(self) -> list[float]:
        """Loads per second in each BIN_SECONDS bin after the opening load."""
        bins = [0] * int(self.duration / BIN_SECONDS)
        for t in self.load_starts:
            i = int(t / BIN_SECONDS)
            if 0 <= i < len(bins):
                bins[i] += 1
        return [n / BIN_SECONDS for n in bins]

    def peak(self) -> float:
        """Highest loads/s in one bin after the opening."""
        return max(self.per_second(), default=0.0)


async def run_one(
    redis_url: str, args: argparse.Namespace, jitter: float, prefix: str
) -> JitterRun:
    redis = Redis.from_url(
        redis_url, max_connections=2 * (args.jitter_keys + args.jitter_readers) + 10
    )
    # A stale window (B = 2 TTL) as in the app's defaults: readers are not held up by a key's
    # recomputation, so when keys expire together their loads land together.
    config = CacheConfig(ttl=args.jitter_ttl, stale_bound=2 * args.jitter_ttl, jitter=jitter)
    cache = REDIS_STRATEGIES[args.jitter_strategy](redis, config)
    keys = [f"{prefix}{seat_map_key(i)}" for i in range(args.jitter_keys)]
    starts: list[float] = []
    t0 = time.perf_counter()
    body = b"x" * 1024

    async def loader() -> bytes:
        starts.append(time.perf_counter() - t0)
        await asyncio.sleep(args.jitter_load_ms / 1000)
        return body

    reads = 0

    async def reader(rng: random.Random) -> None:
        nonlocal reads
        while time.perf_counter() < deadline:
            await cache.get(rng.choice(keys), loader)
            reads += 1
            await asyncio.sleep(args.jitter_think_ms / 1000 * rng.uniform(0.5, 1.5))

    try:
        await asyncio.gather(*(cache.get(k, loader) for k in keys))  # the sale opens
        opening = len(starts)
        origin = min(starts)
        deadline = time.perf_counter() + args.jitter_duration
        await asyncio.gather(*(reader(random.Random(i)) for i in range(args.jitter_readers)))
    finally:
        await cache.aclose()
        await redis.aclose()
    after = [t - origin for t in starts[opening:]]
    return JitterRun(jitter, opening, after, reads, args.jitter_duration)


def plot(out: Path, runs: list[JitterRun], ttl: float, keys: int) -> Path:
    fig, ax = plt.subplots(figsize=(10, 4))
    for r in runs:
        series = r.per_second()
        xs = [i * BIN_SECONDS for i in range(len(series))]
        ax.step(xs, series, where="post", label=f"jitter {r.jitter:g}", lw=1.0)
    ax.set_xlabel("seconds since the sale opened (every key loaded at 0, not drawn)")
    ax.set_ylabel(f"database loads per second ({BIN_SECONDS * 1000:.0f} ms bins)")
    ax.set_title(f"{keys} seat maps cached at the opening, TTL {ttl:g} s: loads over time")
    ax.legend()
    fig.tight_layout()
    path = out / "stampede_jitter.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_csv(out: Path, runs: list[JitterRun]) -> Path:
    path = out / "stampede_jitter.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["jitter", "t", "loads_per_second"])
        for r in runs:
            for i, v in enumerate(r.per_second()):
                w.writerow([r.jitter, round(i * BIN_SECONDS, 2), v])
    return path


def markdown(runs: list[JitterRun], args: argparse.Namespace) -> list[str]:
    lines = [
        "## Many keys, one TTL: TTL jitter",
        "",
        f"{args.jitter_keys} seat maps loaded at the sale's opening, TTL {args.jitter_ttl:g} s,"
        f" strategy `{args.jitter_strategy}`, {args.jitter_readers} closed-loop readers of random"
        f" keys ({args.jitter_think_ms:g} ms think), loader = a {args.jitter_load_ms:g} ms sleep"
        f" standing in for the seat query, {args.jitter_duration:g} s per run, a private Redis"
        " (load/stampede/jitter.py).",
        "Loads after the opening (which loads every key once, at t = 0); peak = the highest",
        "loads per second in one 100 ms bin; mean = loads / duration. Jitter shortens lifetimes",
        "(by up to the fraction), so it costs some extra loads in exchange for a lower peak.",
        "",
        "| jitter | loads after the opening | reads | peak loads/s | mean loads/s |",
        "|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r.jitter:g} | {len(r.load_starts)} | {r.reads} | {r.peak():.0f} |"
            f" {len(r.load_starts) / args.jitter_duration:.0f} |"
        )
    lines += ["", "![loads per second with and without jitter](stampede_jitter.png)", ""]
    return lines


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_arguments(p)
    p.add_argument("--out", type=Path, default=RESULTS)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of their own (jitter_* names): load.stampede adds them to its parser too."""
    p.add_argument("--jitter-keys", dest="jitter_keys", type=int, default=300)
    p.add_argument("--jitter-ttl", dest="jitter_ttl", type=float, default=2.0)
    p.add_argument("--jitters", default="0,0.2,0.5", help="SEAT_CACHE_TTL_JITTER values")
    p.add_argument("--jitter-duration", dest="jitter_duration", type=float, default=15.0)
    p.add_argument("--jitter-readers", dest="jitter_readers", type=int, default=200)
    p.add_argument("--jitter-think-ms", dest="jitter_think_ms", type=float, default=20.0)
    p.add_argument("--jitter-load-ms", dest="jitter_load_ms", type=float, default=50.0)
    p.add_argument("--jitter-strategy", dest="jitter_strategy", default="lock")


def run(args: argparse.Namespace, out: Path) -> tuple[list[str], list[Path]]:
    """Every jitter value on one private Redis (each under its own key prefix)."""
    runs: list[JitterRun] = []
    with own_redis() as url:
        for i, text in enumerate(j for j in args.jitters.split(",") if j):
            r = asyncio.run(run_one(url, args, float(text), prefix=f"jitter{i}:"))
            print(
                f"jitter {r.jitter:g}: {len(r.load_starts)} loads, {r.reads} reads,"
                f" peak {r.peak():.0f} loads/s",
                flush=True,
            )
            runs.append(r)
    return markdown(runs, args), [
        write_csv(out, runs),
        plot(out, runs, args.jitter_ttl, args.jitter_keys),
    ]


def main() -> None:
    args = parser().parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    lines, files = run(args, args.out)
    print("\n".join(lines), *files, sep="\n")


if __name__ == "__main__":
    main()
