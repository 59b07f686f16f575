"""Flash-sale surge: Locust buyers against waiting rooms, then an account of every admission.

    .venv/bin/python -m load.surge --users 300 --spawn-rate 50 --duration 60

Starts one app + RQ workers (load/harness.py: a database and a Redis of the run's own); creates
hot events (few seats, slow admission, most of the demand) and cold ones; runs
Locust headless (load/surge/locustfile.py) for `--duration` seconds; waits (bounded) for in-flight
payments; then accounts, per event, from Redis, PostgreSQL and the app's /metrics:
  - every join is either still waiting or was admitted (wr seq = queue + admitted counter);
  - every admitted user either held seats (PostgreSQL) or is explained by the buyer's own
    record (left, sold out, lost every race, run ended) or left the queue before admission
    came (admitted later, never claimed);
  - no seat sold twice, no seat in two active reservations; paid reservations = succeeded
    payments;
and reports the request stats by route and the waiting room's ETA accuracy
(waitingroom_eta_error_seconds). Writes docs/results/surge.md, docs/results/surge_*.csv (Locust)
and the seat-map/event-page read trace docs/results/traces/surge_seatmap.trace
(replay it: `python -m load.eviction --trace FILE --policy lru --capacity N`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from load.harness import RESULTS, ROOT, Stack, machine
from load.surge.accounting import account, eta_accuracy, load_outcomes, payment_latency, route_stats
from load.surge.report import eviction_preview, markdown
from load.surge.run import (
    SERVER_ENV,
    create_events,
    database_facts,
    metric_facts,
    redis_facts,
    run_locust,
    settle,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--spawn-rate", type=float, default=50)
    parser.add_argument("--duration", type=int, default=60, help="seconds of load (max 600)")
    parser.add_argument("--workers", type=int, default=2, help="RQ worker processes (1-4)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.workers = min(max(args.workers, 1), 4)
    args.duration = min(max(args.duration, 5), 600)
    started = time.monotonic()
    box = machine()
    out: Path = args.out
    (out / "traces").mkdir(parents=True, exist_ok=True)
    paths = {
        "trace": out / "traces" / "surge_seatmap.trace",
        "outcomes": out / "surge_journeys.jsonl",
        "csv": out / "surge",
        "locust_log": out / "surge_locust.log",
    }
    for key in ("trace", "outcomes"):
        paths[key].write_text("")

    with Stack("surge", env=SERVER_ENV, workers=args.workers) as stack:
        events = create_events(stack)
        print(f"surge: events {[(e['id'], e['spec'].kind) for e in events]}", flush=True)
        code = run_locust(stack, events, args, paths)
        print(f"surge: locust exited {code}; settling payments", flush=True)
        pending = asyncio.run(settle(stack.database_url))
        db = asyncio.run(database_facts(stack.database_url))
        rds = redis_facts(stack.redis_url, [e["id"] for e in events])
        metrics = metric_facts(stack.base_url)

    outcomes = load_outcomes(paths["outcomes"])
    rows, problems = account(events, outcomes, db, rds, metrics)
    trace_lines = paths["trace"].read_text().splitlines()
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started),
        "machine": box,
        "parameters": {
            "users": args.users,
            "spawn_rate": args.spawn_rate,
            "duration": args.duration,
            "workers": args.workers,
            "server_env": SERVER_ENV,
            "mix": {
                "leave_waiting": float(os.environ.get("SURGE_P_LEAVE_WAITING", "0.08")),
                "leave_admitted": float(os.environ.get("SURGE_P_LEAVE_ADMITTED", "0.05")),
                "let_expire": float(os.environ.get("SURGE_P_LET_EXPIRE", "0.10")),
            },
        },
        "events": [
            {
                "id": e["id"],
                "kind": e["spec"].kind,
                "seats": e["spec"].rows * e["spec"].per_row,
                "weight": e["weight"],
                "admit_per_second": e["spec"].admit_per_second,
                "max_active": e["spec"].max_active,
                "window_seconds": e["spec"].window_seconds,
            }
            for e in events
        ],
        "accounting": rows,
        "checks": {
            k: db[k]
            for k in (
                "seats_sold_twice",
                "seats_active_twice",
                "paid_without_succeeded_payment",
                "succeeded_payment_not_paid",
                "reservations_with_two_successes",
            )
        }
        | {"pending_after_settle": pending},
        "problems": problems,
        "journey_outcomes": dict(Counter(o["outcome"] for o in outcomes)),
        "routes": route_stats(paths["csv"]),
        "payment_latency": payment_latency(outcomes),
        "payments": {
            "failure_reasons": db["payment_failure_reasons"],
            "seconds_in_db": db["payment_seconds_in_db"],
        },
        "eta_accuracy": eta_accuracy(metrics, outcomes),
        "trace": {
            "path": str(
                paths["trace"].relative_to(ROOT)
                if paths["trace"].is_relative_to(ROOT)
                else paths["trace"]
            ),
            "lines": len(trace_lines),
            "distinct": len(set(trace_lines)),
            "preview": eviction_preview(paths["trace"]),
        },
        "locust_exit_code": code,
    }
    (out / "surge.json").write_text(json.dumps(report, indent=2, default=list) + "\n")
    text = markdown(report)
    (out / "surge.md").write_text(text)
    print(text)
    print(f"surge: took {report['seconds']} s; results: {out}/surge.md, surge.json, surge_*.csv,")
    print(f"       journeys {paths['outcomes']}, trace {paths['trace']}")
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
