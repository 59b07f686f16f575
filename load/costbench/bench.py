"""The standard run: bare, join, poll, seat map and hold in rotated rounds."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from load.accounts import create_users
from load.costbench import fixtures, rounds, servers, wrk
from load.costbench.measure import Phase, Row
from load.costbench.rounds import Options
from load.harness import Stack

# Poll tickets: enough that each is polled below the limit of 2 per second and process.
POLL_TICKETS = 12_000
# bare_paced: each connection waits this long before each request, so 32 connections send at
# most 3,200 a second - about the pace of the hold phase, which PostgreSQL sets.
PACE_MS = 10


def _phases(service: Stack, opts: Options) -> list[Phase]:
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
    # One seat per hold and never the same seat twice in a run: rows of 500 seats (the admin
    # API's most; at most 200,000 seats an event).
    hold_rows = -(-opts.holds_per_round * opts.rounds // 500)
    hold_event = fixtures.create_event(
        base, rows=hold_rows, seats_per_row=500, waiting_room=False, name="hold"
    )
    seats = asyncio.run(fixtures.seat_ids(service.database_url, hold_event))
    # One buyer per 10 seats (the per-buyer cap is turned off anyway).
    holders = asyncio.run(create_users(service.database_url, len(seats) // 10 + 1, "bench"))
    tickets = asyncio.run(fixtures.join_tickets(service.redis_url, poll_event, POLL_TICKETS))
    per_join = opts.join_users_per_round
    per_hold = opts.holds_per_round

    def join_lines(r: int) -> list[str]:
        # Signed up just now, as in a surge: each round's joiners are made right before it.
        users = asyncio.run(create_users(service.database_url, per_join, "bench"))
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
            "bare_paced",
            f"/healthz, {PACE_MS} ms before each request of a connection",
            wrk.paced(wrk.GET_PATH, PACE_MS),
            lambda r: ["/healthz"],
        ),
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


def run(opts: Options) -> tuple[list[Row], dict[str, Any]]:
    wrk.require_wrk()
    with rounds.service(opts) as service:
        print(f"costbench: service up at {service.base_url}; preparing data", flush=True)
        phases = _phases(service, opts)
        workdir = Path(tempfile.mkdtemp(prefix="costbench-wrk-"))
        poll = next(p for p in phases if p.name == "poll")
        started = time.time()
        # Every web process learns every ticket's score once (the first poll is exact).
        rows, idle = rounds.measure_rounds(service, phases, opts, workdir, warm_up=[poll])
        meta = rounds.meta(
            opts,
            idle,
            phases,
            poll_tickets=POLL_TICKETS,
            wall_seconds=round(time.time() - started),
        )
    return rows, meta


NOTES = [
    "bare: `GET /healthz` (no database, no Redis).",
    f"bare_paced: the same, each connection waiting {PACE_MS} ms before each request (wrk's "
    "delay()), so at most 3,200 requests a second: about the hold phase's pace. An event loop "
    "woken for fewer requests at a time pays more per request; the hold's ratio to it says "
    "what a hold costs beyond that. The targets are against the unpaced bare.",
    "join: every request is a user's first, seconds after sign-up (each round's users are made "
    "just before it): the token names its user under the service's tag, so no process looks it "
    "up while its copy of the revocations is current (booking/bearer_tokens.py, "
    "booking/token_revocations.py).",
    f"poll: {POLL_TICKETS:,} tickets in one queue (nobody admitted: one active slot, held "
    "for a day), polled in rotation after a warm-up in which every process saw every ticket "
    "once; 'from memory' is the share answered from the process's snapshot, without Redis.",
    "seatmap: one 300-seat event's seat map through the seat cache (default strategy).",
    "hold: one seat per hold, every seat held once, one buyer per 10 seats (made minutes "
    "before; their tokens' tags vouch for them, no lookup), no waiting room; "
    "includes the seat-map invalidation (the expiry needs no write: the workers sweep "
    "PostgreSQL's expires_at). A process's concurrent holds go to PostgreSQL in batches "
    "(booking/hold_batch.py).",
    *servers.NOTES,
]
