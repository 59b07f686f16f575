"""The simulator CLI contract (DESIGN.md), the sweep's outputs, and the workload generators."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from load.eviction import workloads
from load.eviction.sim import load_trace
from load.eviction.sweep import main as sweep_main

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "load.eviction", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_prints_one_json_line(tmp_path: Path) -> None:
    trace = tmp_path / "t.txt"
    trace.write_text("A\nB\nA\nC\nB\nA\n")  # LRU(2): one hit (see test_eviction_policies)
    done = run_cli("--trace", str(trace), "--policy", "lru", "--capacity", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert list(out) == ["policy", "capacity", "requests", "hits", "hit_ratio"]
    assert out == {"policy": "lru", "capacity": 2, "requests": 6, "hits": 1, "hit_ratio": 0.166667}


def test_cli_opt_and_bad_input(tmp_path: Path) -> None:
    trace = tmp_path / "t.txt"
    trace.write_text("A\nB\nC\nA\nB\nD\nA\n")
    done = run_cli("--trace", str(trace), "--policy", "opt", "--capacity", "2")
    assert json.loads(done.stdout)["hits"] == 2
    assert run_cli("--trace", str(trace), "--policy", "nope", "--capacity", "2").returncode != 0
    assert run_cli("--trace", str(trace), "--policy", "lru", "--capacity", "0").returncode != 0


def test_load_trace_interns_keys(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("seats:1\nevent:1\n\nseats:1\n")
    trace = load_trace(path)
    assert (trace.requests, trace.distinct, trace.name) == ([0, 1, 0], 2, "t")


def test_sweep_writes_csv_plots_and_report(tmp_path: Path) -> None:
    extra = workloads.write_trace(tmp_path / "mine.txt", workloads.zipf(2_000, 300, 1.0, seed=3))
    out = tmp_path / "out"
    args = ["--out", str(out), "--requests", "3000", "--workloads", "zipf-1.0,scan"]
    assert sweep_main([*args, "--jobs", "1", "--trace", str(extra)]) == 0
    with (out / "eviction.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["workload"] for r in rows} == {"zipf-1.0", "scan", "mine"}
    # 5 capacities per built-in workload; the external trace's 262 keys x (0.1%, 0.5%, 1%, 5%,
    # 10%, 25%, 50%) give capacities 1 (0.26 and 1.31 round to it, floored at 1), 3, 13, 26, 66,
    # 131, so 6 distinct ones; 7 policies each
    assert len(rows) == (2 * 5 + 6) * 7
    for r in rows:
        assert float(r["opt_hit_ratio"]) <= 1.0 and float(r["top_c_hit_ratio"]) <= 1.0
    for r in rows:
        assert float(r["hit_ratio"]) <= float(r["opt_hit_ratio"])
    for name in ("zipf-1.0", "scan", "mine", "throughput"):
        assert (out / "eviction" / f"{name}.png").stat().st_size > 1000
    report = (out / "eviction.md").read_text()
    assert "## Summary" in report and "| mine |" in report and "requests/s" in report


def test_workloads_are_seeded() -> None:
    assert workloads.zipf(500, 50, 1.0, seed=1) == workloads.zipf(500, 50, 1.0, seed=1)
    assert workloads.zipf(500, 50, 1.0, seed=1) != workloads.zipf(500, 50, 1.0, seed=2)
    assert workloads.flash_sale(500, 20, seed=1) == workloads.flash_sale(500, 20, seed=1)


def test_zipf_skew() -> None:
    counts = Counter(workloads.zipf(50_000, 100, 1.0, seed=0))
    harmonic = sum(1 / r for r in range(1, 101))
    top = counts.most_common(1)[0][1] / 50_000
    assert top == pytest.approx(1 / harmonic, rel=0.05)  # P(rank 1) = 1 / H_100


def test_scan_keys_are_one_off() -> None:
    keys = workloads.scan_mix(10_000, 500, 1.0, scan_length=1_000, scan_fraction=0.3, seed=0)
    scans = [k for k in keys if k.startswith("scan")]
    assert len(keys) == 10_000 and len(scans) == 3_000 and len(set(scans)) == 3_000
    assert keys.index("scan1") == keys.index("scan0") + 1  # sequential


def test_shifting_changes_the_hot_set() -> None:
    keys = workloads.shifting(20_000, 1_000, 1.2, phases=2, seed=0)
    first = Counter(keys[:10_000]).most_common(1)[0][0]
    second = Counter(keys[10_000:]).most_common(1)[0][0]
    assert first != second


def test_flash_sale_events_go_hot_and_cold() -> None:
    keys = workloads.flash_sale(40_000, 200, seed=0)
    assert all(k.startswith(("seats:", "event:")) for k in keys)
    assert 0.75 < sum(k.startswith("seats:") for k in keys) / len(keys) < 0.85
    early = Counter(keys[:4_000]).most_common(1)[0][0]
    late = Counter(keys[-4_000:]).most_common(1)[0][0]
    assert early != late
