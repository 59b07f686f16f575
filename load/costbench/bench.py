"""The standard run: bare, join, poll, seat map and hold in rotated rounds."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from load.costbench import fixtures, wrk
from load.costbench.measure import Phase, Row, idle_xact_rate, run_phase
from load.costbench.stack import Service

# Poll tickets: enough that each is polled below the limit of 2 per second and process.
POLL_TICKETS = 12_000
WARMUP_SECONDS = 8
WARMUP_RUNS = 8  # at most; stops once nearly every poll is answered from memory


@dataclass(frozen=True)
class Options:
    database_url: str
    redis_url: str
    rounds: int
    seconds: float
    connections: int
    threads: int
    web_processes: int
    workers: int
    join_users_per_round: int
    holds_per_round: int


def _phases(service: Service, opts: Options) -> list[Phase]:
    base = service.base_url
    join_event = fixtures.create_event(
        base, rows=1, seats_per_row=10, waiting_room=True, name="join"
    )
    poll_event = fixtures.create_event(
        base, rows=1, seats_per_row=10, waiting_room=True, name="poll"
    )
    map_event = fixtures.create_event(
        base, rows=10, seats_per_row=30, waiting_room=False, name="seat map"
    )
    # One seat per hold and never the same seat twice in a run: rows of 100 seats.
    hold_rows = -(-opts.holds_per_round * opts.rounds // 100)
    hold_event = fixtures.create_event(
        base, rows=hold_rows, seats_per_row=100, waiting_room=False, name="hold"
    )
    joiners = asyncio.run(
        fixtures.create_users(service.database_url, opts.join_users_per_round * opts.rounds)
    )
    seats = asyncio.run(fixtures.seat_ids(service.database_url, hold_event))
    # One buyer per 10 seats (the per-buyer cap is turned off anyway).
    holders = asyncio.run(fixtures.create_users(service.database_url, len(seats) // 10 + 1))
    tickets = asyncio.run(fixtures.join_tickets(service.redis_url, poll_event, POLL_TICKETS))
    per_join = opts.join_users_per_round
    per_hold = opts.holds_per_round

    def join_lines(r: int) -> list[str]:
        users = joiners[r * per_join : (r + 1) * per_join]
        return [f"/api/events/{join_event}/queue\t{token}" for _, token in users]

    def hold_lines(r: int) -> list[str]:
        chunk = seats[r * per_hold : (r + 1) * per_hold]
        return [
            f"/api/events/{hold_event}/holds\t{holders[(r * per_hold + i) // 10][1]}\t"
            + json.dumps({"seat_ids": [seat]}, separators=(",", ":"))
            for i, seat in enumerate(chunk)
        ]

    return [
        Phase("bare", "/healthz", wrk.GET_PATH, lambda r: ["/healthz"]),
        Phase(
            "join",
            f"POST /api/events/{join_event}/queue",
            wrk.POST_BEARER,
            join_lines,
        ),
        Phase(
            "poll",
            f"GET /api/events/{poll_event}/queue/<ticket>",
            wrk.GET_PATH,
            lambda r: [f"/api/events/{poll_event}/queue/{t}" for t in tickets],
        ),
        Phase(
            "seatmap",
            f"GET /api/events/{map_event}/seats",
            wrk.GET_PATH,
            lambda r: [f"/api/events/{map_event}/seats"],
        ),
        Phase(
            "hold",
            f"POST /api/events/{hold_event}/holds",
            wrk.POST_BEARER_JSON,
            hold_lines,
        ),
    ]


def warm(service: Service, phase: Phase, workdir: Path, opts: Options) -> None:
    for _ in range(WARMUP_RUNS):
        row = run_phase(
            service,
            phase,
            -1,
            workdir,
            threads=opts.threads,
            connections=opts.connections,
            seconds=WARMUP_SECONDS,
            idle_rate=0.0,
        )
        print(f"costbench: warm-up of {phase.name}: {row.from_memory:.0%} from memory", flush=True)
        if row.from_memory >= 0.995:
            return


def run(opts: Options) -> tuple[list[Row], dict[str, object]]:
    wrk.require_wrk()
    rows: list[Row] = []
    with Service(
        opts.database_url,
        opts.redis_url,
        web_processes=opts.web_processes,
        workers=opts.workers,
    ) as service:
        print(f"costbench: service up at {service.base_url}; preparing data", flush=True)
        phases = _phases(service, opts)
        workdir = Path(tempfile.mkdtemp(prefix="costbench-wrk-"))
        poll = next(p for p in phases if p.name == "poll")
        # Every web process learns every ticket's score once (the first poll is exact).
        warm(service, poll, workdir, opts)
        idle = asyncio.run(idle_xact_rate(service))
        started = time.time()
        for r in range(opts.rounds):
            order = phases[r % len(phases) :] + phases[: r % len(phases)]
            for phase in order:
                row = run_phase(
                    service,
                    phase,
                    r,
                    workdir,
                    threads=opts.threads,
                    connections=opts.connections,
                    seconds=opts.seconds,
                    idle_rate=idle,
                )
                rows.append(row)
                print(
                    f"round {r} {row.phase:8s} {row.rps:8.0f} req/s  web {row.web_cpu_us:7.0f} µs"
                    f"  total {row.total_cpu_us:7.0f} µs  p99 {row.p99_ms:6.1f} ms"
                    f"  pg {row.pg_xacts_net_per_req:.3f}  non2xx {row.non2xx}",
                    flush=True,
                )
        meta: dict[str, object] = {
            "web_processes": opts.web_processes,
            "workers": opts.workers,
            "connections": opts.connections,
            "threads": opts.threads,
            "seconds": opts.seconds,
            "rounds": opts.rounds,
            "idle_pg_xacts_per_second": round(idle, 2),
            "poll_tickets": POLL_TICKETS,
            "paths": {p.name: p.path for p in phases},
            "wall_seconds": round(time.time() - started),
        }
    return rows, meta


NOTES = [
    "bare: `GET /healthz` (no database, no Redis).",
    "join: every request is a user's first (fresh bearer token): each web process meets each "
    "token once, so its bearer lookup misses the in-process cache and queries PostgreSQL.",
    f"poll: {POLL_TICKETS:,} tickets in one queue (nobody admitted: one active slot, held "
    "for a day), polled in rotation after a warm-up in which every process saw every ticket "
    "once; 'from memory' is the share answered from the process's snapshot, without Redis.",
    "seatmap: one 300-seat event's seat map through the seat cache (default strategy).",
    "hold: one seat per hold, every seat held once, one buyer per 10 seats, no waiting room; "
    "includes the per-hold expiry scheduling (one Redis ZADD) and the seat-map invalidation.",
]
