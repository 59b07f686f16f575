"""Sweep: every policy x capacity x workload, in parallel worker processes; CSV, plots, report.

python -m load.eviction sweep --out docs/results            # the documented full run
python -m load.eviction sweep --out /tmp/r --requests 50000 # a quick smoke run
python -m load.eviction sweep --out /tmp/r --trace my.txt   # add any one-key-per-line trace
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from eviction import POLICIES
from load.eviction import workloads
from load.eviction.sim import Result, Row, Trace, load_trace, simulate, static_top_hit_ratio

SEED = 20240601
THROUGHPUT_WORKLOAD = "zipf-1.0"
THROUGHPUT_CAPACITY = 1_000
EXTERNAL_FRACTIONS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5)


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    generate: Callable[[int, int], list[str]]  # (requests, seed) -> keys
    capacities: tuple[int, ...]


def _zipf(alpha: float) -> Callable[[int, int], list[str]]:
    return lambda n, s: workloads.zipf(n, 100_000, alpha, s)


def builtin_workloads() -> dict[str, Workload]:
    zipf_caps = (100, 500, 1_000, 5_000, 10_000)
    specs = [
        *(
            Workload(
                f"zipf-{alpha}",
                f"Zipf alpha={alpha} over 100,000 keys, independent requests",
                _zipf(alpha),
                zipf_caps,
            )
            for alpha in (0.8, 1.0, 1.2)
        ),
        Workload(
            "scan",
            "Zipf alpha=1.0 over 20,000 hot keys; 30% of requests are one-off sequential scans "
            "of 10,000 new keys each",
            lambda n, s: workloads.scan_mix(n, 20_000, 1.0, 10_000, 0.3, s),
            (250, 500, 1_000, 2_500, 5_000),
        ),
        Workload(
            "shifting",
            "Zipf alpha=1.0 over 20,000 keys; the rank -> key mapping is re-drawn in each of "
            "10 equal phases",
            lambda n, s: workloads.shifting(n, 20_000, 1.0, 10, s),
            (100, 250, 500, 1_000, 2_000),
        ),
        Workload(
            "flashsale",
            "seats:<event> / event:<event> keys of 5,000 events (Zipf drawing power) whose sales "
            "open at random times, surge and decay",
            lambda n, s: workloads.flash_sale(n, 5_000, s),
            (50, 100, 250, 500, 1_000),
        ),
    ]
    return {w.name: w for w in specs}


# Traces live in module globals so forked workers share them copy-on-write instead of pickling.
_TRACES: dict[str, Trace] = {}


def _run(task: tuple[str, str, int]) -> tuple[str, Result]:
    workload, policy, capacity = task
    return workload, simulate(policy, capacity, _TRACES[workload].requests)


def write_csv(path: Path, rows: Sequence[Row]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["workload", "distinct_keys", "requests", "policy", "capacity", "hits", "hit_ratio",
             "opt_hit_ratio", "gap_to_opt_pp", "top_c_hit_ratio", "seconds",
             "requests_per_second"]
        )  # fmt: skip
        for r in rows:
            res = r.result
            w.writerow(
                [r.workload, r.distinct, res.requests, res.policy, res.capacity, res.hits,
                 f"{res.hit_ratio:.6f}", f"{r.opt_hit_ratio:.6f}", f"{r.gap_pp:.3f}",
                 f"{r.top_c_hit_ratio:.6f}", f"{res.seconds:.4f}", f"{res.requests_per_second:.0f}"]
            )  # fmt: skip


def prepare_traces(
    chosen: Sequence[Workload], external: Sequence[Path], requests: int, seed: int, trace_dir: Path
) -> dict[str, tuple[Trace, tuple[int, ...], str]]:
    """Generate (to files) and load every trace; return name -> (trace, capacities, description)."""
    out: dict[str, tuple[Trace, tuple[int, ...], str]] = {}
    for w in chosen:
        started = time.perf_counter()
        path = workloads.write_trace(trace_dir / f"{w.name}.txt", w.generate(requests, seed))
        trace = load_trace(path, w.name)
        out[w.name] = (trace, w.capacities, w.description)
        print(f"  {w.name}: {len(trace.requests):,} requests, {trace.distinct:,} keys "
              f"({time.perf_counter() - started:.1f}s)", flush=True)  # fmt: skip
    for path in external:
        trace = load_trace(path)
        # Below the number of keys (a cache that holds everything compares nothing), at least 1.
        top = max(1, trace.distinct - 1)
        caps = tuple(
            sorted({min(top, max(1, round(trace.distinct * f))) for f in EXTERNAL_FRACTIONS})
        )
        out[trace.name] = (trace, caps, f"external trace {path.name}")
        print(f"  {trace.name}: {len(trace.requests):,} requests, {trace.distinct:,} keys")
    return out


def measure_throughput(trace: Trace, policies: Sequence[str], capacity: int) -> dict[str, float]:
    """Requests/s of each policy, one at a time in this process (nothing else of ours running)."""
    return {p: simulate(p, capacity, trace.requests).requests_per_second for p in policies}


def main(argv: Sequence[str] | None = None) -> int:
    builtins = builtin_workloads()
    parser = argparse.ArgumentParser(prog="python -m load.eviction sweep", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/results"))
    parser.add_argument("--requests", type=int, default=1_000_000, help="per synthetic workload")
    parser.add_argument("--workloads", default=",".join(builtins), help="comma-separated")
    parser.add_argument("--trace", type=Path, action="append", default=[], help="extra trace file")
    parser.add_argument("--policies", default=",".join(POLICIES), help="comma-separated")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--trace-dir", type=Path, default=None, help="keep generated traces here")
    args = parser.parse_args(argv)
    policies = [p for p in args.policies.split(",") if p]
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        parser.error(f"unknown policies: {unknown}")
    if "opt" not in policies:
        policies.append("opt")  # the gaps are measured against it
    names = [n for n in args.workloads.split(",") if n]
    if any(n not in builtins for n in names):
        parser.error(f"workloads must be among {sorted(builtins)}")

    from load.eviction.report import write_report  # matplotlib is imported only here

    started = time.perf_counter()
    load_before = os.getloadavg()
    print(f"generating traces ({args.requests:,} requests each, seed {args.seed})", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        trace_dir = args.trace_dir or Path(tmp)
        traces = prepare_traces(
            [builtins[n] for n in names], args.trace, args.requests, args.seed, trace_dir
        )
    _TRACES.update({name: t for name, (t, _, _) in traces.items()})
    tasks = [(name, p, c) for name, (_, caps, _) in traces.items() for c in caps for p in policies]
    # Longest first, so the pool does not end on one straggler.
    tasks.sort(key=lambda t: t[1] in ("wtinylfu", "opt", "lfu", "arc"), reverse=True)
    results: dict[tuple[str, str, int], Result] = {}
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(max(1, args.jobs)) as pool:
        for done, (name, res) in enumerate(pool.imap_unordered(_run, tasks), 1):
            results[(name, res.policy, res.capacity)] = res
            if done % 10 == 0 or done == len(tasks):
                print(f"  {done}/{len(tasks)} runs ({time.perf_counter() - started:.0f}s)",
                      flush=True)  # fmt: skip
    top_c = {
        (name, c): static_top_hit_ratio(t.requests, c)
        for name, (t, caps, _) in traces.items()
        for c in caps
    }
    rows = [
        Row(
            name,
            traces[name][0].distinct,
            res,
            results[(name, "opt", res.capacity)].hit_ratio,
            top_c[(name, res.capacity)],
        )
        for (name, _, _), res in sorted(results.items())
    ]
    throughput: dict[str, float] = {}
    if THROUGHPUT_WORKLOAD in _TRACES:
        print("measuring requests/s, one policy at a time", flush=True)
        throughput = measure_throughput(_TRACES[THROUGHPUT_WORKLOAD], policies, THROUGHPUT_CAPACITY)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "eviction.csv", rows)
    report = write_report(
        out=args.out,
        rows=rows,
        descriptions={name: d for name, (_, _, d) in traces.items()},
        policies=policies,
        throughput=throughput,
        throughput_setup=(THROUGHPUT_WORKLOAD, THROUGHPUT_CAPACITY),
        command=" ".join(["python -m load.eviction sweep", *(argv or sys.argv[2:])]),
        requests=args.requests,
        seed=args.seed,
        jobs=args.jobs,
        load_before=load_before,
        elapsed=time.perf_counter() - started,
    )
    print(f"results: {report}, {args.out / 'eviction.csv'}, {args.out / 'eviction'}/*.png")
    return 0
