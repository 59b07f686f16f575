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
    Summary,
    load_events,
    loads_per_expiry,
    refresh_moments,
)
from load.stampede.workload import RunData

Runs = dict[tuple[str, str], RunData]  # (variant, strategy) -> data


def write_csvs(
    out: Path, summaries: list[Summary], all_runs: list[Summary], runs: Runs
) -> list[Path]:
    """Medians, every single run, and the first run's timeline and expiries."""
    paths = [
        out / "stampede_runs.csv",
        out / "stampede_summary.csv",
        out / "stampede_timeline.csv",
        out / "stampede_expiries.csv",
    ]
    for path, rows in ((paths[0], all_runs), (paths[1], summaries)):
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, [fl.name for fl in fields(Summary)])
            w.writeheader()
            for s in rows:
                w.writerow(
                    {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(s).items()}
                )
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
        w3.writerow(["variant", "strategy", "expiry_t", "loads"])
        for (variant, strategy), data in runs.items():
            if strategy == "none":
                continue
            moments = refresh_moments(data)
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
            if strategy != "none":
                for m in refresh_moments(data):
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
            "database loads per expiry",
            log=True,
        )
        ax.set_title(f"{variant}: loads per expiry (none: per TTL window)")
    fig.tight_layout()
    path = out / "stampede_loads_per_expiry.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(v: float, digits: int = 1) -> str:
    return "–" if math.isnan(v) else f"{v:.{digits}f}"


def _table(rows: list[Summary], holds: bool) -> list[str]:
    head = (
        "| strategy | reads/s | errors | loads/expiry mean | max | expiries | loads | p50 ms"
        " | p95 ms | p99 ms | p99 at expiry ms | server p50/p99 ≤ ms | stale reads"
        " | stale age p99 ms | max age ms | load avg |"
    )
    lines = [head + (" holds | visible after mean/max ms |" if holds else "")]
    lines.append("|---" * (16 + (2 if holds else 0)) + "|")
    for s in rows:
        cells = [
            s.strategy, _fmt(s.throughput), str(s.errors), _fmt(s.loads_per_expiry_mean),
            str(s.loads_per_expiry_max), str(s.expiries), str(s.loads), _fmt(s.p50 * 1000),
            _fmt(s.p95 * 1000), _fmt(s.p99 * 1000), _fmt(s.p99_at_expiry * 1000),
            f"{_fmt(s.server_p50 * 1000, 0)} / {_fmt(s.server_p99 * 1000, 0)}",
            str(s.stale_reads), _fmt(s.stale_age_p99_ms, 0), _fmt(s.max_age_ms, 0),
            _fmt(s.loadavg),
        ]  # fmt: skip
        if holds:
            cells += [str(s.holds), f"{_fmt(s.visible_mean_ms, 0)} / {_fmt(s.visible_max_ms, 0)}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


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
    variants: list[str],
    params: dict[str, Any],
    machine: dict[str, Any],
    command: str,
    files: list[Path],
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
        "Tables show the median over the repeated runs (every run: `stampede_runs.csv`).",
        "Each strategy runs against its own freshly migrated database (`ticketing_stampede`)",
        "and Redis db 12, one uvicorn process, the same workload: closed-loop readers of one hot",
        "event's seat map. `reads` has readers only; `holds` adds bookings (2 seats per hold),",
        "each invalidating the map; a probe then times when the hold shows in the seat map.",
        "",
        "How the figures are obtained (load/stampede/analysis.py): an *expiry* is a moment the",
        "cache stopped being fresh (TTL expiry), seen as the first non-hit read (X-Cache",
        f"miss/load/stale) after at least {EPISODE_GAP} s of hits (or of nothing); in the holds",
        "variant each hold's invalidation counts as one too. Database loads are read from the",
        "server's `seat_cache_loads_total`, sampled every 50 ms, and charged to the latest",
        "expiry before them. `none` has no expiries; its loads are counted per TTL-long window.",
        "When readers never see the cache go stale (`xfetch` refreshing ahead in the background),",
        "each recomputation episode (loads closer than 0.25 s) is the moment instead.",
        f"*At expiry* = reads that started within [{EXPIRY_WINDOW[0]}, +{EXPIRY_WINDOW[1]}] s",
        "of an expiry moment. Latencies are measured by the client, which shares the 2 CPUs",
        "with the server: when a pile-up releases many 100 kB+ answers at once they queue in the",
        "client too. *server p50/p99* is read from the server's own",
        "`http_request_duration_seconds` histogram (bucket upper bounds) for comparison.",
        "",
    ]
    bound_ms = float(params["stale_bound_s"]) * 1000
    for variant in variants:
        rows = [s for s in summaries if s.variant == variant]
        lines += [f"## {variant}", "", *_table(rows, variant == "holds"), ""]
        lines += [*_checks(rows, bound_ms), ""]
    lines += [
        "## Files",
        "",
        *[f"- `{p.relative_to(out.parent.parent)}`" for p in files],
        "",
        "![loads over time](stampede_loads_timeline.png)",
        "![loads per expiry](stampede_loads_per_expiry.png)",
        "![latency](stampede_latency.png)",
        "",
    ]
    path = out / "stampede.md"
    path.write_text("\n".join(lines))
    return path
