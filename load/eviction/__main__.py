"""Eviction simulator CLI: replay a trace through one policy of eviction/, or sweep them all.

python -m load.eviction --trace FILE --policy lru --capacity 1000
    prints one JSON line {"policy", "capacity", "requests", "hits", "hit_ratio"}
python -m load.eviction sweep --out docs/results
    every policy x capacity x workload: CSV, PNG plots and docs/results/eviction.md
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from eviction import POLICIES
from load.eviction.sim import load_trace, simulate


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["sweep"]:
        from load.eviction.sweep import main as sweep_main  # matplotlib only when sweeping

        return sweep_main(args[1:])
    parser = argparse.ArgumentParser(prog="python -m load.eviction", description=__doc__)
    parser.add_argument("--trace", type=Path, required=True, help="one key per line")
    parser.add_argument("--policy", choices=sorted(POLICIES), required=True)
    parser.add_argument("--capacity", type=int, required=True, help="entries the cache holds")
    ns = parser.parse_args(args)
    if ns.capacity < 1:
        parser.error("--capacity must be >= 1")
    trace = load_trace(ns.trace)
    result = simulate(ns.policy, ns.capacity, trace.requests)
    print(json.dumps(result.summary()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
