"""Writes the stampede experiment's CSVs, PNG plots and docs/results/stampede.md."""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from load.stampede.analysis import (
    EPISODE_GAP,
    EXPIRY_WINDOW,
    RANGED,
    Summary,
    load_events,
    loads_per_expiry,
    moments_of,
    value_range,
)
from load.stampede.workload import RunData

Runs = dict[tuple[str, str], RunData]  # (variant, strategy) -> data
Every = dict[tuple[str, str], list[Summary]]  # (variant, strategy) -> every run's summary


def _row(s: Summary, every: Every) -> dict[str, Any]:
    row: dict[str, Any] = {
        k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(s).items()
    }
    for name in RANGED:
        lo, hi = value_range(every.get((s.variant, s.strategy), [s]), name)
        row[f"{name}_min"], row[f"{name}_max"] = round(lo, 4), round(hi, 4)
    return row


def write_csvs(out: Path, summaries: list[Summary], every: Every, runs: Runs) -> list[Path]:
    """Medians (with the min and max over runs of the RANGED fields), every single run, and the
    first run's timeline and moments (expiries and invalidations, merged)."""
    paths = [
        out / "stampede_runs.csv",
        out / "stampede_summary.csv",
        out / "stampede_timeline.csv",
        out / "stampede_expiries.csv",
    ]
    names = [fl.name for fl in fields(Summary)]
    ranged = [f"{n}_{end}" for n in RANGED for end in ("min", "max")]
    with paths[0].open("w", newline="") as f:
        w = csv.DictWriter(f, names)
        w.writeheader()
        for s in (x for xs in every.values() for x in xs):
            w.writerow(
                {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(s).items()}
            )
    with paths[1].open("w", newline="") as f:
        w = csv.DictWriter(f, names + ranged)
        w.writeheader()
        for s in summaries:
            w.writerow(_row(s, every))
    with paths[2].open("w", newline="") as f:
        w2 = csv.writer(f)
        w2.writerow(
            ["variant", "strategy", "t", "loads", "hits", "misses", "stale_served", "lock_waits"]
        )
        for (variant, strategy), data in runs.items():
            for sample in data.samples:
                c = sample.counters
                w2.writerow(
                    [variant, strategy, round(sample.t, 3), c["loads"], c["hits"], c["misses"],
                     c["stale_served"], c["lock_waits"]]
                )  # fmt: skip
    with paths[3].open("w", newline="") as f:
        w3 = csv.writer(f)
        w3.writerow(["variant", "strategy", "moment_t", "loads"])
        for (variant, strategy), data in runs.items():
            moments = moments_of(data)
            for t, n in zip(moments, loads_per_expiry(moments, load_events(data)), strict=True):
                w3.writerow([variant, strategy, round(t, 3), n])
    return paths


def plot_timelines(out: Path, runs: Runs, variants: list[str], strategies: list[str]) -> Path:
    fig, axes = plt.subplots(
        len(strategies), len(variants), figsize=(7 * len(variants), 1.8 * len(strategies)),
        sharex=True, squeeze=False,
    )  # fmt: skip
    for col, variant in enumerate(variants):
        for row, strategy in enumerate(strategies):
            ax = axes[row][col]
            data = runs.get((variant, strategy))
            if data is None:
                ax.set_visible(False)
                continue
            events = load_events(data)
            ax.bar([t for t, _ in events], [n for _, n in events], width=0.05, color="tab:red")
            for m in moments_of(data):
                ax.axvline(m, color="grey", lw=0.6, ls=":")
            ax.set_yscale("symlog", linthresh=1)
            ax.set_ylabel(f"{strategy}\nloads/sample", fontsize=8)
            if row == 0:
                ax.set_title(f"{variant}: DB loads per ~50 ms sample (dotted: expiries, holds)")
    for ax in axes[-1]:
        ax.set_xlabel("seconds")
    fig.tight_layout()
    path = out / "stampede_loads_timeline.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _bars(
    ax: Any, labels: list[str], series: dict[str, list[float]], ylabel: str, log: bool
) -> None:
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        xs = [x + i * width for x in range(len(labels))]
        ax.bar(xs, [0 if math.isnan(v) else v for v in values], width, label=name)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(labels))], labels)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)


def plot_latency(out: Path, summaries: list[Summary], variants: list[str]) -> Path:
    fig, axes = plt.subplots(1, len(variants), figsize=(7 * len(variants), 4), squeeze=False)
    for ax, variant in zip(axes[0], variants, strict=True):
        rows = [s for s in summaries if s.variant == variant]
        _bars(
            ax,
            [s.strategy for s in rows],
            {
                "p50": [s.p50 * 1000 for s in rows],
                "p95": [s.p95 * 1000 for s in rows],
                "p99": [s.p99 * 1000 for s in rows],
                "p99 at expiry": [s.p99_at_expiry * 1000 for s in rows],
            },
            "latency (ms)",
            log=True,
        )
        ax.set_title(f"{variant}: seat-map latency")
    fig.tight_layout()
    path = out / "stampede_latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_loads_per_expiry(out: Path, summaries: list[Summary], variants: list[str]) -> Path:
    fig, axes = plt.subplots(1, len(variants), figsize=(7 * len(variants), 4), squeeze=False)
    for ax, variant in zip(axes[0], variants, strict=True):
        rows = [s for s in summaries if s.variant == variant]
        _bars(
            ax,
            [s.strategy for s in rows],
            {
                "mean": [s.loads_per_expiry_mean for s in rows],
                "max": [float(s.loads_per_expiry_max) for s in rows],
            },
            "database loads per moment",
            log=True,
        )
        ax.set_title(f"{variant}: loads per expiry/invalidation (none: per TTL window)")
    fig.tight_layout()
    path = out / "stampede_loads_per_expiry.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(v: float, digits: int = 1) -> str:
    return "–" if math.isnan(v) else f"{v:.{digits}f}"


def _ranged(s: Summary, every: Every, name: str, scale: float = 1.0, digits: int = 1) -> str:
    """The median, and (min–max) over the runs when there were several."""
    median = _fmt(float(getattr(s, name)) * scale, digits)
    runs = every.get((s.variant, s.strategy), [])
    if len(runs) < 2 or math.isnan(float(getattr(s, name))):
        return median
    lo, hi = value_range(runs, name)
    return f"{median} ({_fmt(lo * scale, digits)}–{_fmt(hi * scale, digits)})"


def _table(rows: list[Summary], every: Every, holds: bool) -> list[str]:
    head = (
        "| strategy | reads/s | errors | loads per moment, mean | max | moments | loads | p50 ms"
        " | p95 ms | p99 ms | p99 at a moment ms | server p50/p99 ≤ ms | stale reads"
        " | stale age p99 ms | max age ms | load avg |"
    )
    lines = [head + (" holds | visible after mean/max ms |" if holds else "")]
    lines.append("|---" * (16 + (2 if holds else 0)) + "|")
    for s in rows:
        cells = [
            s.strategy, _ranged(s, every, "throughput"), str(s.errors),
            _ranged(s, every, "loads_per_expiry_mean"),
            _ranged(s, every, "loads_per_expiry_max", digits=0), str(s.expiries), str(s.loads),
            _fmt(s.p50 * 1000), _fmt(s.p95 * 1000), _ranged(s, every, "p99", 1000),
            _ranged(s, every, "p99_at_expiry", 1000),
            f"{_fmt(s.server_p50 * 1000, 0)} / {_fmt(s.server_p99 * 1000, 0)}",
            str(s.stale_reads), _fmt(s.stale_age_p99_ms, 0), _fmt(s.max_age_ms, 0),
            _fmt(s.loadavg),
        ]  # fmt: skip
        if holds:
            cells += [str(s.holds), f"{_fmt(s.visible_mean_ms, 0)} / {_fmt(s.visible_max_ms, 0)}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _best_p99(rows: list[Summary], every: Every) -> list[str]:
    """Which strategy had the lowest median p99, and whether its range overlaps the runner-up's
    (then the ranking is not settled by these runs)."""
    ranked = sorted((s for s in rows if not math.isnan(s.p99)), key=lambda s: s.p99)
    if len(ranked) < 2:
        return []
    best, second = ranked[0], ranked[1]
    _, hi_best = value_range(every.get((best.variant, best.strategy), [best]), "p99")
    lo_2nd, _ = value_range(every.get((second.variant, second.strategy), [second]), "p99")
    overlap = " (their ranges over the runs overlap)" if hi_best >= lo_2nd else ""
    return [
        f"- lowest median p99: {best.strategy} {best.p99 * 1000:.0f} ms, then {second.strategy}"
        f" {second.p99 * 1000:.0f} ms{overlap}"
    ]


def _checks(rows: list[Summary], bound_ms: float) -> list[str]:
    """Computed statements, so a regenerated report never contradicts its own table."""
    out = []
    for s in rows:
        if math.isnan(s.max_age_ms):
            continue
        verdict = "within" if s.max_age_ms <= bound_ms else "**beyond**"
        out.append(
            f"- {s.strategy}: oldest data served {s.max_age_ms:.0f} ms, {verdict} the"
            f" {bound_ms:.0f} ms staleness bound; {s.errors} errors"
        )
    return out


def write_markdown(
    out: Path,
    summaries: list[Summary],
    every: Every,
    variants: list[str],
    params: dict[str, Any],
    machine: dict[str, Any],
    command: str,
    files: list[Path],
    jitter: list[str],
) -> Path:
    lines = [
        "# Cache-stampede experiment: seat-map strategies under load",
        "",
        f"- date: {params['date']}",
        f"- machine: {machine['cpu']}, {machine['cores']} CPUs (shared with other work; the"
        f" load client runs on the same CPUs as the server), Python {machine['python']},"
        f" {machine['platform']}",
        f"- command: `{command}`",
        "- parameters: " + ", ".join(f"{k}={v}" for k, v in params.items() if k != "date"),
        "",
        "Tables show the median over the repeated runs and, in brackets, the lowest and highest",
        "single run (every run: `stampede_runs.csv`; medians with min/max:",
        "`stampede_summary.csv`).",
        "Each strategy runs against a freshly migrated database and a private Redis of its own",
        "(load/harness.py), one uvicorn process, the same workload: closed-loop readers of one hot",
        "event's seat map. `reads` has readers only; `holds` adds bookings (2 seats per hold),",
        "each invalidating the map; a probe then times when the hold shows in the seat map.",
        "",
        "How the figures are obtained (load/stampede/analysis.py): a *moment* is when a",
        "recomputation became due: a TTL expiry, seen as the first non-hit read (X-Cache",
        f"miss/load/stale) after at least {EPISODE_GAP} s of hits (or of nothing), or, in the",
        "holds variant, a hold's invalidation. Moments closer than that are one (an invalidation",
        "and the first stale read it causes 1–20 ms later are one moment), so *loads per moment*",
        "is database loads per expiry or invalidation: 1.0 means exactly one recomputation each.",
        "Database loads are read from the server's `seat_cache_loads_total`, sampled every 50 ms,",
        "and charged to the latest moment before them. `none` has no cache and no moments; its",
        "loads are counted per TTL-long window. When readers never see the cache go stale",
        "(`xfetch` refreshing ahead in the background), each recomputation episode (loads closer",
        f"than {EPISODE_GAP} s) is the moment instead. *At a moment* = reads that started within",
        f"[{EXPIRY_WINDOW[0]}, +{EXPIRY_WINDOW[1]}] s of one. Latencies are measured by the",
        "client, which shares the 2 CPUs with the server: when a pile-up releases many 100 kB+",
        "answers at once they queue in the client too. *server p50/p99* is read from the",
        "server's own",
        "`http_request_duration_seconds` histogram (bucket upper bounds) for comparison.",
        "",
    ]
    bound_ms = float(params["stale_bound_s"]) * 1000
    for variant in variants:
        rows = [s for s in summaries if s.variant == variant]
        lines += [f"## {variant}", "", *_table(rows, every, variant == "holds"), ""]
        lines += [*_best_p99(rows, every), *_checks(rows, bound_ms), ""]
    lines += jitter
    lines += [
        "## Files",
        "",
        *[f"- `{p.relative_to(out.parent.parent)}`" for p in files],
        "",
        "![loads over time](stampede_loads_timeline.png)",
        "![loads per moment](stampede_loads_per_expiry.png)",
        "![latency](stampede_latency.png)",
        "",
    ]
    path = out / "stampede.md"
    path.write_text("\n".join(lines))
    return path
