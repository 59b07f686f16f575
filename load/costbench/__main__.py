"""CLI: `python -m load.costbench [--million] ...` (see the package docstring)."""

from __future__ import annotations

import argparse
import contextlib
import os

from booking.routes.admin import MAX_SEATS_PER_EVENT as MAX_HOLD_SEATS
from load.costbench import bench, million, report
from load.costbench.rounds import Options
from load.harness import claimed_redis_db


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m load.costbench", description=__doc__)
    parser.add_argument("--million", action="store_true", help="1M vs 1k queue; opening")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--web-processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--join-users", type=int, default=40_000, help="fresh users per round")
    parser.add_argument(
        "--holds",
        type=int,
        default=48_000,
        help="fresh seats per round (more than a round can hold: a repeated seat is a cheap 409"
        " and the report says so)",
    )
    parser.add_argument("--queue-size", type=int, default=1_000_000, help="--million: big queue")
    parser.add_argument(
        "--redis-url",
        default=None,
        help="an EMPTY Redis db to use (claimed, emptied at the end); default: a private "
        "redis-server of the run's own (load/harness.py) — clean command counts, and --million "
        "changes its SLOWLOG/LATENCY settings for the run",
    )
    args = parser.parse_args()
    if args.holds * args.rounds > MAX_HOLD_SEATS:
        parser.error(f"--holds x --rounds: at most {MAX_HOLD_SEATS:,} seats (one event's most)")
    with contextlib.ExitStack() as resources:
        # The database is the run's own (load/harness.py; LOAD_PG_URL names the PostgreSQL
        # server), and so is the Redis (a private server, or the empty db --redis-url names,
        # claimed): nothing with a fixed name is ever dropped or flushed.
        redis_url = None
        if args.redis_url:
            redis_url = resources.enter_context(claimed_redis_db(args.redis_url))
        run(args, redis_url)


def run(args: argparse.Namespace, redis_url: str | None) -> None:
    opts = Options(
        redis_url=redis_url,
        rounds=args.rounds,
        seconds=args.seconds,
        connections=args.connections,
        threads=args.threads,
        web_processes=args.web_processes,
        workers=args.workers,
        join_users_per_round=args.join_users,
        holds_per_round=args.holds,
    )
    if args.million:
        paths = million.main(opts, args.queue_size)
    else:
        rows, meta = bench.run(opts)
        paths = report.write_all(
            "costbench",
            rows,
            meta,
            title="Server cost per request (costbench)",
            command="python -m load.costbench",
            notes=bench.NOTES,
        )
    for path in paths:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
