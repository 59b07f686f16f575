"""Holds benchmark: hold throughput and the single-seat race, side by side with a bare baseline.

    .venv/bin/python -m load.bench.holds [--clients 32] [--seconds 2.5] [--rounds 3]

Starts one app + one worker (load/harness.py) on a database and a Redis of the run's own,
then in ONE run, `--rounds` times in alternating order:
  (i)   GET /healthz requests/s: the bare baseline (no database, no Redis)
  (ii)  holds/s: N clients, each holding seats no one else wants (one seat per request)
  (iii) seat-map reads/s through the seat cache (GET /api/events/{id}/seats)
and once: (iv) the race: 200 clients POST a hold on the same seat at once.
Absolute numbers mean little here: the load generator and the server share the same 2 cores, so
every figure is also given as a ratio to the baseline measured in the same run.
Writes docs/results/holds_bench.json and docs/results/holds_bench.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from load.harness import ROOT, Stack, create_event, machine

RESULTS = ROOT / "docs" / "results"
RACE_CLIENTS = 200
PHASE_CAP_REQUESTS = 50_000
SERVER_ENV = {
    "HOLD_SECONDS": "600",
    "DB_POOL_MAX": "20",
    "SEAT_CACHE_STRATEGY": "ttl",
    "SEAT_CACHE_TTL_SECONDS": "2.0",
    "SEAT_CACHE_STALE_BOUND_SECONDS": "2.0",
    "SWEEP_INTERVAL_SECONDS": "30",
}


@dataclass
class Phase:
    name: str
    round: int
    requests: int
    seconds: float
    per_second: float
    p50_ms: float
    p95_ms: float
    statuses: dict[str, int]
    extra: dict[str, int] = field(default_factory=dict)


Request = Callable[[httpx.AsyncClient, int, int], Awaitable[httpx.Response | None]]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def closed_loop(
    http: httpx.AsyncClient, name: str, rnd: int, clients: int, seconds: float, request: Request
) -> Phase:
    """`clients` loops, each sending its next request when the previous one answered.

    `request(http, client, i)` returns None when that client has nothing left to send.
    """
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    cache: Counter[str] = Counter()
    end = time.monotonic() + seconds

    async def loop(client: int) -> None:
        i = 0
        while time.monotonic() < end and len(latencies) < PHASE_CAP_REQUESTS:
            t0 = time.perf_counter()
            response = await request(http, client, i)
            if response is None:
                return
            latencies.append(time.perf_counter() - t0)
            statuses[str(response.status_code)] += 1
            if "x-cache" in response.headers:
                cache[response.headers["x-cache"]] += 1
            i += 1

    started = time.monotonic()
    await asyncio.gather(*(loop(c) for c in range(clients)))
    elapsed = time.monotonic() - started
    phase = Phase(
        name,
        rnd,
        len(latencies),
        round(elapsed, 3),
        round(len(latencies) / elapsed, 1),
        round(percentile(latencies, 0.5) * 1000, 2),
        round(percentile(latencies, 0.95) * 1000, 2),
        dict(statuses),
        {f"x-cache {k}": v for k, v in cache.items()},
    )
    print(
        f"  round {rnd} {name:<9} {phase.per_second:>8.1f}/s  p50 {phase.p50_ms:6.1f} ms"
        f"  p95 {phase.p95_ms:6.1f} ms  {phase.statuses} {phase.extra or ''}",
        flush=True,
    )
    return phase


async def bench_event(
    http: httpx.AsyncClient, stack: Stack, rows: int, per_row: int
) -> tuple[int, list[int]]:
    event = await create_event(http, name=f"bench {uuid.uuid4().hex[:6]}", rows=rows,
                               seats_per_row=per_row)  # fmt: skip
    return event.id, event.seat_ids


async def create_users(http: httpx.AsyncClient, n: int) -> list[str]:
    sem = asyncio.Semaphore(16)

    async def one(i: int) -> str:
        async with sem:
            r = await http.post(
                "/api/users",
                json={
                    "name": f"bench {i}",
                    "email": f"bench{i}.{uuid.uuid4().hex[:8]}@example.com",
                },
            )
            r.raise_for_status()
            return str(r.json()["token"])

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def race(
    http: httpx.AsyncClient, event_id: int, seat: int, tokens: list[str]
) -> dict[str, Any]:
    start = time.monotonic()

    async def one(token: str) -> tuple[int, float]:
        r = await http.post(
            f"/api/events/{event_id}/holds",
            json={"seat_ids": [seat]},
            headers={"Authorization": f"Bearer {token}"},
        )
        return r.status_code, time.monotonic() - start

    results = await asyncio.gather(*(one(t) for t in tokens))
    codes = Counter(str(code) for code, _ in results)
    resolved = max(t for _, t in results)
    winner_at = min(t for code, t in results if code == 201) if codes["201"] else None
    out = {
        "clients": len(tokens),
        "resolved_seconds": round(resolved, 3),
        "winner_answered_seconds": None if winner_at is None else round(winner_at, 3),
        "statuses": dict(codes),
        "effective_per_second": round(len(tokens) / resolved, 1),
    }
    print(f"  race: {out}", flush=True)
    return out


async def run(clients: int, seconds: float, rounds: int, stack: Stack) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=RACE_CLIENTS + 10, max_keepalive_connections=RACE_CLIENTS)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60, limits=limits) as http:
        hold_event, hold_seats = await bench_event(http, stack, 100, 50)
        map_event, _ = await bench_event(http, stack, 10, 50)
        race_event, race_seats = await bench_event(http, stack, 1, 4)
        tokens = await create_users(http, max(clients, RACE_CLIENTS))
        print(f"  setup: {len(hold_seats)} seats to hold, {len(tokens)} users", flush=True)
        # Client c holds seats c, c+N, c+2N, ...: nobody ever competes for a seat.
        per_client = [hold_seats[c::clients] for c in range(clients)]
        cursor = [0] * clients

        async def healthz(h: httpx.AsyncClient, c: int, i: int) -> httpx.Response:
            return await h.get("/healthz")

        async def hold(h: httpx.AsyncClient, c: int, i: int) -> httpx.Response | None:
            if cursor[c] >= len(per_client[c]):
                return None
            seat = per_client[c][cursor[c]]
            cursor[c] += 1
            return await h.post(
                f"/api/events/{hold_event}/holds",
                json={"seat_ids": [seat]},
                headers={"Authorization": f"Bearer {tokens[c]}"},
            )

        async def seatmap(h: httpx.AsyncClient, c: int, i: int) -> httpx.Response:
            return await h.get(f"/api/events/{map_event}/seats")

        # Warm-up: connections, JIT-free but still first-request costs (pool, prepared stmts).
        await closed_loop(http, "warmup", 0, clients, 0.5, healthz)
        await closed_loop(http, "warmup", 0, clients, 0.5, seatmap)
        phases: list[Phase] = []
        order: list[tuple[str, Request]] = [
            ("healthz", healthz),
            ("holds", hold),
            ("seatmap", seatmap),
        ]
        for rnd in range(1, rounds + 1):
            for name, request in order if rnd % 2 else list(reversed(order)):
                phases.append(await closed_loop(http, name, rnd, clients, seconds, request))
        race_result = await race(http, race_event, race_seats[0], tokens[:RACE_CLIENTS])
    return {"phases": [asdict(p) for p in phases], "race": race_result}


def summarise(raw: dict[str, Any]) -> dict[str, Any]:
    by: dict[str, list[dict[str, Any]]] = {}
    for p in raw["phases"]:
        by.setdefault(p["name"], []).append(p)
    rate = {name: statistics.median(p["per_second"] for p in ps) for name, ps in by.items()}
    p50 = {name: statistics.median(p["p50_ms"] for p in ps) for name, ps in by.items()}
    base = rate["healthz"]
    race = raw["race"]
    return {
        "median_per_second": rate,
        "median_p50_ms": p50,
        "ratio_to_healthz": {name: round(r / base, 3) for name, r in rate.items()},
        "race_resolved_in_healthz_requests": round(race["resolved_seconds"] * base, 1),
        "race_effective_ratio_to_healthz": round(race["effective_per_second"] / base, 3),
        "race_effective_ratio_to_holds": round(race["effective_per_second"] / rate["holds"], 3),
    }


def markdown(report: dict[str, Any]) -> str:
    s, params, race = report["summary"], report["parameters"], report["race"]
    m = report["machine"]
    lines = [
        "# Holds benchmark",
        "",
        f"- date: {report['date']}",
        f"- machine: {m['cpu']}, {m['cores']} cores, Python {m['python']} ({m['platform']});"
        f" 1-minute load average before the run {m['loadavg_1m']}",
        "- **the load generator (httpx, one asyncio process) and the server (one uvicorn process,"
        " one RQ worker, PostgreSQL, Redis) share these cores**: absolute rates are a floor set by"
        " this box, so every figure is read against the bare `/healthz` baseline of the same run.",
        f"- parameters: {params['clients']} closed-loop clients, {params['seconds']} s per phase,"
        f" {params['rounds']} rounds in alternating order (medians below), race of"
        f" {race['clients']} clients; server env {json.dumps(params['server_env'])}",
        "- command: `.venv/bin/python -m load.bench.holds`",
        "",
        "| measure | median rate /s | ratio to /healthz | median p50 latency (ms) |",
        "|---|---:|---:|---:|",
    ]
    labels = {
        "healthz": "(i) GET /healthz (baseline)",
        "holds": "(ii) POST holds, distinct seats",
        "seatmap": "(iii) GET seat map through the cache",
    }
    for name, label in labels.items():
        lines.append(
            f"| {label} | {s['median_per_second'][name]:.1f} | {s['ratio_to_healthz'][name]:.3f}"
            f" | {s['median_p50_ms'][name]:.1f} |"
        )
    lines += [
        "",
        f"**(iv) Race**: {race['clients']} clients, one seat: statuses {race['statuses']};"
        f" every answer in {race['resolved_seconds']} s (winner answered after"
        f" {race['winner_answered_seconds']} s) = {race['effective_per_second']} answers/s,"
        f" i.e. {s['race_effective_ratio_to_healthz']}x the /healthz rate and"
        f" {s['race_effective_ratio_to_holds']}x the distinct-seat hold rate; the race took as long"
        f" as {s['race_resolved_in_healthz_requests']} /healthz requests.",
        "",
        "## Every phase",
        "",
        "| round | phase | requests | seconds | rate /s | p50 ms | p95 ms | statuses | cache |",
        "|---:|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for p in report["phases"]:
        lines.append(
            f"| {p['round']} | {p['name']} | {p['requests']} | {p['seconds']} | {p['per_second']}"
            f" | {p['p50_ms']} | {p['p95_ms']} | {p['statuses']} | {p['extra'] or ''} |"
        )
    lines += [
        "",
        "Reading: a hold is one PostgreSQL transaction (row locks in id order, an insert per"
        " seat), an RQ `enqueue_at` for its expiry and a seat-map invalidation; the seat map is"
        " a Redis GET of a ready JSON body. In the race, 199 of 200 transactions queue one after"
        " another on the same row lock and answer 409; a 409 skips the insert, the RQ enqueue and"
        " the invalidation, so the race resolves faster per request than distinct-seat holds.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=2.5, help="per phase (bounded)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    seconds = min(max(args.seconds, 0.5), 10.0)
    rounds = min(max(args.rounds, 1), 5)
    clients = min(max(args.clients, 1), 128)
    started = time.monotonic()
    box = machine()
    with Stack("bench_holds", env=SERVER_ENV) as stack:
        raw = asyncio.run(asyncio.wait_for(run(clients, seconds, rounds, stack), timeout=300))
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": box,
        "parameters": {
            "clients": clients,
            "seconds": seconds,
            "rounds": rounds,
            "server_env": SERVER_ENV,
        },
        **raw,
    }
    report["summary"] = summarise(raw)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "holds_bench.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "holds_bench.md").write_text(markdown(report))
    s = report["summary"]
    print("ratios to /healthz:", json.dumps(s["ratio_to_healthz"]))
    print(
        f"race: {raw['race']['statuses']} in {raw['race']['resolved_seconds']} s"
        f" ({s['race_effective_ratio_to_healthz']}x healthz rate)"
    )
    print(f"took {time.monotonic() - started:.0f} s; results: {args.out}/holds_bench.{{json,md}}")


if __name__ == "__main__":
    main()
