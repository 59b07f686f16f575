"""Payment surge: payment request -> paid under an offered payment rate, one step at a time.

    .venv/bin/python -m load.paybench.surge --rates 20,40,60,80 --seconds 20

Starts the real stack (load/harness.py: one uvicorn app and --workers `python -m workers.run`
processes on a database and a Redis of their own). Seeds, straight into PostgreSQL, buyers with
bearer tokens and one valid hold each (the surge measures payments, not the sale before them).
Then, for each offered rate R, an open-loop generator sends `POST /api/reservations/{id}/payment`
at R per second for --seconds (each request at its own scheduled time, whether or not earlier
ones were answered), waits until every payment of the step settled, and reads:

  latency  = the request's send time (generator) to payments.updated_at (PostgreSQL; one box,
             one clock): request -> paid, without a buyer's polling interval (a buyer polling
             every 0.5 s could not resolve 400 ms); row->paid = from the payment row the app
             inserted to paid (the worker's share);
  answered = the 202 round trip as the generator saw it;
  CPU      = /proc utime + stime during the step of the web process, the worker process(es), the
             PostgreSQL backends of the run's database, the private redis-server and the
             generator itself, in % of one core; the box's busy % from /proc/stat (other work
             on the box included).

The goal (issue 14): p95 <= 2 x provider latency.
Writes docs/results/<--name, default paysurge>.{md,csv}.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import asyncpg
import httpx
import redis

from load.accounts import insert_users
from load.harness import RESULTS, Stack, create_event, machine

SETTLE_TIMEOUT_SECONDS = 60.0
PAUSE_SECONDS = 3.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Step:
    offered_per_s: float
    sent: int
    sent_per_s: float  # what the generator achieved (it is open-loop: late sends are counted)
    answered_202: int
    paid: int
    paid_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    row_p95_ms: float  # from the payment row (the web app's insert) to paid
    goal_ms: float
    goal_met: bool
    answer_p95_ms: float
    cpu_web_pct: float
    cpu_workers_pct: float
    cpu_postgres_pct: float
    cpu_redis_pct: float
    cpu_generator_pct: float
    box_busy_pct: float
    load_average_1min: float
    max_charge_attempts: int


@dataclass(frozen=True)
class Hold:
    reservation_id: int
    token: str


async def seed(url: str, event_id: int, count: int) -> list[Hold]:
    """`count` buyers, each with a bearer token and a valid hold on one seat of the event."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            users = await insert_users(conn, count, "Payer")
            rows = await conn.fetch(
                "WITH s AS (SELECT id, row_number() OVER (ORDER BY id) k FROM seats"
                "           WHERE event_id = $1),"
                " u AS (SELECT u, row_number() OVER () k FROM unnest($2::bigint[]) u),"
                " r AS (INSERT INTO reservations (user_id, event_id, amount_cents, expires_at)"
                "       SELECT u.u, $1, 5000, now() + interval '1 hour' FROM u ORDER BY u.k"
                "       RETURNING id, user_id),"
                " rk AS (SELECT id, user_id, row_number() OVER (ORDER BY id) k FROM r),"
                " rs AS (INSERT INTO reservation_seats (reservation_id, seat_id)"
                "        SELECT rk.id, s.id FROM rk JOIN s USING (k))"
                " SELECT rk.id, rk.user_id FROM rk ORDER BY rk.id",
                event_id,
                [user_id for user_id, _ in users],
            )
    finally:
        await conn.close()
    token_of = dict(users)
    return [Hold(r["id"], token_of[r["user_id"]]) for r in rows]


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def box_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole box."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


async def backend_pids(url: str, database: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await conn.close()
    return [int(r["pid"]) for r in rows]


class CpuMeter:
    """CPU ticks of named groups of processes between start() and stop()."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self._before: dict[str, int] = {}
        self._box: tuple[int, int] = (0, 0)
        self._self = 0.0
        self._started = 0.0

    def start(self) -> None:
        self._before = {g: sum(cpu_ticks(p) for p in pids) for g, pids in self.groups.items()}
        self._box = box_ticks()
        times = os.times()
        self._self = times.user + times.system
        self._started = time.monotonic()

    def stop(self) -> dict[str, float]:
        wall = max(1e-6, time.monotonic() - self._started)
        out = {
            g: round(100 * (sum(cpu_ticks(p) for p in pids) - self._before[g]) / CLK_TCK / wall, 1)
            for g, pids in self.groups.items()
        }
        times = os.times()
        out["generator"] = round(100 * (times.user + times.system - self._self) / wall, 1)
        busy, total = box_ticks()
        out["box"] = round(100 * (busy - self._box[0]) / max(1, total - self._box[1]), 1)
        return out


async def offer(
    base_url: str, holds: list[Hold], rate: float
) -> tuple[int, float, list[float], dict[int, float]]:
    """Send one payment request per hold at `rate` per second (open loop); (202s, seconds the
    sending took, the answer times in seconds, the wall-clock send time of each reservation's
    request)."""
    answers: list[float] = []
    sent_at: dict[int, float] = {}
    ok = 0
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:

        async def pay(hold: Hold) -> None:
            nonlocal ok
            sent = time.monotonic()
            sent_at[hold.reservation_id] = time.time()
            try:
                r = await http.post(
                    f"/api/reservations/{hold.reservation_id}/payment",
                    headers={
                        "Authorization": f"Bearer {hold.token}",
                        "Idempotency-Key": f"paysurge-{hold.reservation_id}",
                    },
                )
            except httpx.HTTPError:
                return
            answers.append(time.monotonic() - sent)
            ok += r.status_code == 202

        started = time.monotonic()
        tasks = []
        for i, hold in enumerate(holds):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(pay(hold)))
        sending = time.monotonic() - started
        await asyncio.gather(*tasks)
    return ok, sending, answers, sent_at


async def settle(url: str, sent_at: dict[int, float]) -> dict[str, float]:
    ids = list(sent_at)
    conn = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
        while True:
            pending = await conn.fetchval(
                "SELECT count(*) FROM payments WHERE reservation_id = ANY($1)"
                " AND status = 'pending'",
                ids,
            )
            if pending == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE status = 'succeeded') AS paid,"
            " extract(epoch FROM max(updated_at) - min(created_at)) AS span,"
            " percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY"
            "   extract(epoch FROM updated_at - created_at)) AS q,"
            " max(extract(epoch FROM updated_at - created_at)) AS worst"
            " FROM payments WHERE reservation_id = ANY($1) AND status <> 'pending'",
            ids,
        )
        settled = await conn.fetch(
            "SELECT reservation_id, extract(epoch FROM updated_at) AS at FROM payments"
            " WHERE reservation_id = ANY($1) AND status <> 'pending'",
            ids,
        )
        attempts = await conn.fetchval(
            "SELECT coalesce(max(c.attempts), 0) FROM provider_charges c"
            " JOIN payments p ON p.id = c.payment_id WHERE p.reservation_id = ANY($1)",
            ids,
        )
    finally:
        await conn.close()
    assert row is not None
    q = row["q"] or [0.0, 0.0, 0.0]
    # Request -> paid: the generator's send time to PostgreSQL's settle time (one box, one clock).
    waits = [float(r["at"]) - sent_at[int(r["reservation_id"])] for r in settled]
    return {
        "e2e_p50": percentile(waits, 0.5),
        "e2e_p95": percentile(waits, 0.95),
        "e2e_p99": percentile(waits, 0.99),
        "e2e_max": max(waits, default=0.0),
        "paid": int(row["paid"]),
        "span": float(row["span"] or 0.0),
        "p50": float(q[0]),
        "p95": float(q[1]),
        "p99": float(q[2]),
        "max": float(row["worst"] or 0.0),
        "attempts": int(attempts),
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_step(
    stack: Stack, holds: list[Hold], rate: float, latency_ms: int, groups: dict[str, list[int]]
) -> Step:
    load = os.getloadavg()[0]
    meter = CpuMeter(groups)
    meter.start()
    ok, sending, answers, sent_at = asyncio.run(offer(stack.base_url, holds, rate))
    settled = asyncio.run(settle(stack.database_url, sent_at))
    cpu = meter.stop()
    goal = 2 * latency_ms
    p95 = settled["e2e_p95"] * 1000
    return Step(
        offered_per_s=rate,
        sent=len(holds),
        sent_per_s=round(len(holds) / max(sending, 1e-6), 1),
        answered_202=ok,
        paid=int(settled["paid"]),
        paid_per_s=round(settled["paid"] / max(settled["span"], 1e-6), 1),
        p50_ms=round(settled["e2e_p50"] * 1000),
        p95_ms=round(p95),
        p99_ms=round(settled["e2e_p99"] * 1000),
        max_ms=round(settled["e2e_max"] * 1000),
        row_p95_ms=round(settled["p95"] * 1000),
        goal_ms=goal,
        goal_met=p95 <= goal and settled["paid"] == len(holds),
        answer_p95_ms=round(percentile(answers, 0.95) * 1000),
        cpu_web_pct=cpu["web"],
        cpu_workers_pct=cpu["workers"],
        cpu_postgres_pct=cpu["postgres"],
        cpu_redis_pct=cpu["redis"],
        cpu_generator_pct=cpu["generator"],
        box_busy_pct=cpu["box"],
        load_average_1min=round(load, 1),
        max_charge_attempts=int(settled["attempts"]),
    )


def write(
    steps: list[Step], args: argparse.Namespace, box: dict[str, str | int | float], out: Path
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / f"{args.name}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(steps[0])))
        writer.writeheader()
        for step in steps:
            writer.writerow(asdict(step))
    held = [s.offered_per_s for s in steps if s.goal_met]
    broke = [s.offered_per_s for s in steps if not s.goal_met]
    lines = [
        "# Payment surge: payment request -> paid at an offered payment rate",
        "",
        f"`python -m load.paybench.surge --rates {args.rates} --seconds {args.seconds:g}"
        f" --workers {args.workers} --concurrency {args.concurrency}"
        f" --latency-ms {args.latency_ms} --name {args.name}` (load/paybench/surge.py)",
        "",
        f"- machine: {box['cpu']}, {box['cores']} cores, Python {box['python']}; 1-minute load"
        f" average {box['loadavg_1m']} before the run (other work shares the cores).",
        f"- stack: one uvicorn app process, {args.workers} worker process(es) with"
        f" PAYMENT_CONCURRENCY={args.concurrency}, simulated provider {args.latency_ms} ms, no"
        " declines; PostgreSQL and a private Redis on the same box.",
        "- each step: an open-loop generator sends one payment request per pre-seeded hold at"
        " the offered rate for the step's seconds; latency (p50..max) = the request's send time"
        " (generator) to payments.updated_at (PostgreSQL; one box, one clock): request -> paid;"
        " row->paid = from the payment row the app inserted to paid (the worker's share);"
        " 202 p95 = the request's round trip.",
        "- CPU: % of one core during the step (/proc) of each process group; box = the whole"
        " box's busy %, other work included.",
        f"- goal: p95 <= 2 x provider latency = {2 * args.latency_ms} ms. Held at:"
        f" {', '.join(f'{r:g}/s' for r in held) or 'none'}; missed at:"
        f" {', '.join(f'{r:g}/s' for r in broke) or 'none'}.",
        "",
        "| offered/s | sent/s | paid | paid/s | p50 ms | p95 ms | p99 ms | max ms |"
        " row->paid p95 ms | goal | 202 p95 ms | CPU web % | CPU workers % | CPU PostgreSQL % |"
        " CPU Redis % | CPU generator % | box busy % | load avg | max charge attempts |",
        "|" + "---|" * 19,
    ]
    for s in steps:
        lines.append(
            f"| {s.offered_per_s:g} | {s.sent_per_s} | {s.paid}/{s.sent} | {s.paid_per_s} |"
            f" {s.p50_ms} | {s.p95_ms} | {s.p99_ms} | {s.max_ms} | {s.row_p95_ms} |"
            f" {'met' if s.goal_met else 'missed'} | {s.answer_p95_ms} | {s.cpu_web_pct} |"
            f" {s.cpu_workers_pct} | {s.cpu_postgres_pct} | {s.cpu_redis_pct} |"
            f" {s.cpu_generator_pct} | {s.box_busy_pct} | {s.load_average_1min} |"
            f" {s.max_charge_attempts} |"
        )
    lines.append("")
    (out / f"{args.name}.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="20,40,60,80", help="offered payments/s per step")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per step (max 120)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (1-4)")
    parser.add_argument("--concurrency", type=int, default=16, help="PAYMENT_CONCURRENCY")
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="paysurge", help="results file stem in --out")
    args = parser.parse_args()
    args.seconds = min(max(args.seconds, 2.0), 120.0)
    args.workers = min(max(args.workers, 1), 4)
    rates = [float(r) for r in args.rates.split(",")]
    counts = [max(1, round(r * args.seconds)) for r in rates]
    box = machine()
    env = {
        "PAYMENT_CONCURRENCY": str(args.concurrency),
        "PAYMENT_LATENCY_MS": str(args.latency_ms),
        "PAYMENT_FAILURE_RATE": "0",
        "HOLD_SECONDS": "3600",
        "DB_POOL_MAX": "20",
    }
    steps = []
    with Stack("paysurge", env=env, workers=args.workers) as stack:
        seats = sum(counts)
        rows = (seats + 99) // 100

        async def make_event() -> int:
            async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
                event = await create_event(http, rows=rows, seats_per_row=100, with_seats=False)
            return event.id

        event_id = asyncio.run(make_event())
        holds = asyncio.run(seed(stack.database_url, event_id, seats))
        client = redis.Redis.from_url(stack.redis_url)
        redis_pid = int(client.info("server")["process_id"])
        client.close()
        groups = {
            "web": [stack.procs[0].pid],
            "workers": [p.pid for p in stack.procs[1:]],
            "redis": [redis_pid],
        }
        first = 0
        for rate, count in zip(rates, counts, strict=True):
            time.sleep(PAUSE_SECONDS)
            groups["postgres"] = asyncio.run(backend_pids(stack.database_url, stack.database))
            step = run_step(stack, holds[first : first + count], rate, args.latency_ms, groups)
            first += count
            print(step, flush=True)
            steps.append(step)
    write(steps, args, box, args.out)
    print(f"wrote {args.out / args.name}.md")


if __name__ == "__main__":
    main()
