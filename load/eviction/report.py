"""Plots (matplotlib, Agg) and the markdown report of an eviction sweep."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a display
import matplotlib.pyplot as plt

from load.eviction.sim import Row
from load.harness import machine

CLASSIC = ("lru", "lfu", "fifo")
STYLE = {"opt": {"color": "black", "linestyle": "--", "linewidth": 2.0}}

WHY = """\
- **LRU** keeps what was used most recently. It is right when the recent past predicts the near
  future, and it adapts instantly when popularity moves, but it has no memory of frequency: one pass
  over many new keys (a scan) pushes the whole hot set out, and on a skewed but random (Zipf) stream
  it wastes room on keys that were touched once and happened to be recent.
- **FIFO** evicts in insertion order and ignores hits, so a hot key is thrown out as readily as a
  cold one; it is the floor the others are measured from (and the cheapest, with no work on a hit).
- **LFU** keeps the keys hit most often while resident. On a stationary Zipf stream that is close to
  the best an online policy can do (the hot keys are exactly the most frequent), and a scan cannot
  displace keys with high counts. But counts never age: when the hot set changes, yesterday's
  favourites keep their large counts and today's hot keys, starting at 1, evict each other.
- **ARC** splits the cache between "seen once" and "seen twice or more" and moves the boundary using
  ghost lists of recently evicted keys, so it tunes itself between LRU and LFU behaviour; scans only
  churn the "seen once" side.
- **S3-FIFO** sends every new key through a small FIFO (10%); only keys hit again there reach the
  main FIFO, and the main FIFO gives keys with hits another round (CLOCK). Most keys in real traces
  are requested once, so "quick demotion" removes one-hit wonders and scans early without touching
  the main area; the ghost queue rescues keys that were demoted too early.
- **W-TinyLFU** admits a key into the main area only if a compact frequency sketch says it is more
  popular than the key it would evict; the sketch halves its counters periodically, so it tracks
  recent frequency. A scan key (count 1) loses every duel against a hot key, and after a shift the
  new hot keys out-count the decayed old ones within a few sample periods. The 1% window lets a
  brand-new key survive long enough to be counted.
- **OPT** (Belady) knows the future: it evicts the key needed farthest ahead. No online policy can
  reach it; the gap to OPT is what knowledge of the future is worth. On an independent Zipf stream
  even a perfect frequency oracle stays below OPT, because OPT also exploits the random timing of
  individual requests.
"""


def _by_workload(rows: Sequence[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        out[r.workload].append(r)
    return out


def _table(rows: Sequence[Row], policies: Sequence[str]) -> dict[int, dict[str, Row]]:
    table: dict[int, dict[str, Row]] = defaultdict(dict)
    for r in rows:
        table[r.result.capacity][r.result.policy] = r
    return dict(sorted(table.items()))


def plot_workload(path: Path, name: str, rows: Sequence[Row], policies: Sequence[str]) -> None:
    table = _table(rows, policies)
    caps = list(table)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for p in policies:
        ys = [table[c][p].result.hit_ratio for c in caps if p in table[c]]
        ax.plot(caps[: len(ys)], ys, marker="o", label=p, **STYLE.get(p, {}))  # type: ignore[arg-type]
    ax.set_xscale("log")
    ax.set_xlabel("cache capacity (entries, log scale)")
    ax.set_ylabel("hit ratio")
    ax.set_title(f"{name}: hit ratio vs capacity")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_throughput(path: Path, throughput: Mapping[str, float], setup: str) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = list(throughput)
    ax.bar(names, [throughput[n] / 1e6 for n in names], color="tab:blue")
    ax.set_ylabel("million requests / s")
    ax.set_title(f"simulator speed, one core, {setup}")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _machine() -> str:
    m = machine()
    return f"{m['cpu']}, {m['cores']} logical cores, {m['platform']}, Python {m['python']}"


def _summary(by: Mapping[str, Sequence[Row]], policies: Sequence[str]) -> list[str]:
    online = [p for p in policies if p != "opt"]
    lines = [
        "| workload | best online policy | its mean hit ratio | OPT mean | mean gap to OPT (pp) "
        "| mean gap (% of OPT) | top-C mean | best of LRU/LFU/FIFO | margin over it (pp) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rows in by.items():
        table = _table(rows, policies)

        def mean(p: str, tbl: dict[int, dict[str, Row]] = table) -> float:
            return sum(tbl[c][p].result.hit_ratio for c in tbl) / len(tbl)

        best = max(online, key=mean)
        opt = mean("opt")
        rel = sum(
            (t["opt"].opt_hit_ratio - t[best].result.hit_ratio) / t["opt"].opt_hit_ratio
            for t in table.values()
        ) / len(table)
        classic = [p for p in CLASSIC if p in online]
        best_classic = max(classic, key=mean) if classic else best
        top = sum(t["opt"].top_c_hit_ratio for t in table.values()) / len(table)
        lines.append(
            f"| {name} | {best} | {mean(best):.4f} | {opt:.4f} | {100 * (opt - mean(best)):.2f} "
            f"| {100 * rel:.1f}% | {top:.4f} | {best_classic} ({mean(best_classic):.4f}) "
            f"| {100 * (mean(best) - mean(best_classic)):+.2f} |"
        )
    return lines


def _workload_section(
    name: str, description: str, rows: Sequence[Row], policies: Sequence[str]
) -> list[str]:
    table = _table(rows, policies)
    first = rows[0]
    lines = [
        f"### {name}",
        "",
        f"{description}. {first.result.requests:,} requests, {first.distinct:,} distinct keys.",
        "",
        f"![{name}](eviction/{name}.png)",
        "",
        "Hit ratio (gap to OPT in percentage points); **bold**: the best online policy at that "
        "capacity.",
        "",
        "| capacity | " + " | ".join(policies) + " | top-C |",
        "|---" * (len(policies) + 2) + "|",
    ]
    for cap, cells in table.items():
        online = {p: r for p, r in cells.items() if p != "opt"}
        best = max(online.values(), key=lambda r: r.result.hit_ratio).result.hit_ratio
        out = []
        for p in policies:
            r = cells[p]
            text = f"{r.result.hit_ratio:.4f}"
            if p != "opt":
                text += f" ({-r.gap_pp:+.2f})"
                if r.result.hit_ratio == best:
                    text = f"**{text}**"
            out.append(text)
        top = f"{cells['opt'].top_c_hit_ratio:.4f}"
        lines.append(f"| {cap:,} | " + " | ".join(out) + f" | {top} |")
    return [*lines, ""]


def write_report(
    *,
    out: Path,
    rows: Sequence[Row],
    descriptions: Mapping[str, str],
    policies: Sequence[str],
    throughput: Mapping[str, float],
    throughput_setup: tuple[str, int],
    command: str,
    requests: int,
    seed: int,
    jobs: int,
    load_before: tuple[float, float, float],
    elapsed: float,
) -> Path:
    plots = out / "eviction"
    plots.mkdir(parents=True, exist_ok=True)
    by = _by_workload(rows)
    ordered = [p for p in policies if p != "opt"] + ["opt"]
    for name, wrows in by.items():
        plot_workload(plots / f"{name}.png", name, wrows, ordered)
    tp_setup = f"{throughput_setup[0]}, capacity {throughput_setup[1]:,}"
    if throughput:
        plot_throughput(plots / "throughput.png", throughput, tp_setup)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Eviction policies against Belady's OPT",
        "",
        "Regenerate everything here (this file, `eviction.csv`, `eviction/*.png`) with",
        f"`{command}` (add `--trace FILE` to include any one-key-per-line trace, e.g. one",
        "recorded from Locust).",
        "",
        f"- date: {now}; sweep wall time {elapsed:.0f} s with {jobs} worker processes",
        f"- machine: {_machine()}; load average before the run "
        f"{load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f} (cores are shared)",
        f"- parameters: {requests:,} requests per synthetic workload, seed {seed}; capacities in "
        "entries (every key has size 1); each run starts from an empty cache, so cold misses count",
        "- policies: `eviction/` (W-TinyLFU: 1% window, SLRU 20/80, 4-bit count-min "
        "sketch halved every 10 x capacity; S3-FIFO: 10% small queue, ghost = main size, "
        "2-bit counters, promote on >= 1 hit in the small queue)",
        "- gap to OPT: OPT's hit ratio minus the policy's, in percentage points (pp), at the same "
        'capacity; "% of OPT" divides that by OPT\'s hit ratio',
        "- top-C: the hit ratio of a cache pre-loaded with the C keys most requested over the "
        "whole trace and never changed (offline). On the independent Zipf streams it is the "
        "ceiling of any policy that learns popularity, however perfectly: the part of the gap to "
        "OPT above it is out of every online policy's reach (OPT also exploits when each request "
        "happens). When popularity moves (shifting, flashsale) it is no ceiling.",
        "",
        "## Summary (means over each workload's capacities)",
        "",
        *_summary(by, ordered),
        "",
        "## Requests per second",
        "",
    ]
    if throughput:
        lines += [
            f"Pure-Python simulator, one process, on `{tp_setup}` (interned int keys, "
            "`sum(map(policy.access, trace))`), measured after the sweep:",
            "",
            "| policy | requests/s |",
            "|---|---|",
            *(f"| {p} | {v:,.0f} |" for p, v in throughput.items()),
            "",
            "![throughput](eviction/throughput.png)",
            "",
        ]
    lines += ["## Why each policy wins where it wins", "", WHY, "## Per workload", ""]
    for name, wrows in by.items():
        lines += _workload_section(name, descriptions[name], wrows, ordered)
    redis = out / "eviction_redis.md"
    if redis.exists():
        lines += [
            "## Redis maxmemory-policy",
            "",
            "Redis's own approximated LRU and LFU, measured live: see "
            "[eviction_redis.md](eviction_redis.md) (a cache-aside client straight on Redis)"
            + (
                " and [eviction_redis_server.md](eviction_redis_server.md) (the app's seat cache "
                "in front of a Redis with `maxmemory`)."
                if (out / "eviction_redis_server.md").exists()
                else "."
            ),
            "",
        ]
    path = out / "eviction.md"
    path.write_text("\n".join(lines))
    return path
