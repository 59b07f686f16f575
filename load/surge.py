"""Flash-sale surge: Locust buyers against waiting rooms, then an account of every admission.

    .venv/bin/python -m load.surge --users 300 --spawn-rate 50 --duration 60

Starts one app + one RQ worker (load/serve.py) on a fresh database `ticketing_surge` and Redis
db 10; creates hot events (few seats, slow admission, most of the demand) and cold ones; runs
Locust headless (load/locustfile.py) for `--duration` seconds; waits (bounded) for in-flight
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
import csv
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

from load.serve import ROOT, Stack, machine
from waitingroom.keys import RoomKeys

RESULTS = ROOT / "docs" / "results"
SERVER_ENV = {
    "HOLD_SECONDS": "15",
    "PAYMENT_LATENCY_MS": "200",
    "PAYMENT_FAILURE_RATE": "0.05",
    "SWEEP_INTERVAL_SECONDS": "2",
    "DB_POOL_MAX": "20",
    "SEAT_CACHE_STRATEGY": "ttl",
    "SEAT_CACHE_TTL_SECONDS": "2.0",
    "SEAT_CACHE_STALE_BOUND_SECONDS": "2.0",
}
SETTLE_SECONDS = 30.0


@dataclass(frozen=True)
class EventSpec:
    kind: str
    rows: int
    per_row: int
    weight: int
    admit_per_second: int
    max_active: int
    window_seconds: int


EVENT_SPECS = [
    EventSpec("hot", 4, 25, 30, 6, 30, 20),
    EventSpec("hot", 4, 25, 25, 6, 30, 20),
    EventSpec("warm", 6, 25, 10, 10, 60, 20),
    EventSpec("cold", 8, 25, 5, 20, 100, 20),
    EventSpec("cold", 8, 25, 3, 20, 100, 20),
    EventSpec("cold", 8, 25, 2, 20, 100, 20),
]


def create_events(stack: Stack) -> list[dict[str, Any]]:
    events = []
    with httpx.Client(base_url=stack.base_url, timeout=30) as http:
        for i, spec in enumerate(EVENT_SPECS):
            r = http.post(
                "/api/admin/events",
                json={
                    "name": f"Surge {spec.kind} {i} {uuid.uuid4().hex[:4]}",
                    "starts_at": "2030-01-01T20:00:00+00:00",
                    "seats": [
                        {
                            "section": "A",
                            "rows": spec.rows,
                            "seats_per_row": spec.per_row,
                            "price": 8000,
                        }
                    ],
                    "waiting_room_enabled": True,
                },
                headers=stack.admin_headers(),
            )
            r.raise_for_status()
            eid = int(r.json()["id"])
            r = http.patch(
                f"/api/admin/events/{eid}/waiting-room",
                json={
                    "admit_per_second": spec.admit_per_second,
                    "max_active": spec.max_active,
                    "admission_window_seconds": spec.window_seconds,
                },
                headers=stack.admin_headers(),
            )
            r.raise_for_status()
            events.append({"id": eid, "weight": spec.weight, "spec": spec})
    return events


def run_locust(
    stack: Stack, events: list[dict[str, Any]], args: argparse.Namespace, paths: dict[str, Path]
) -> int:
    env = {
        **os.environ,
        "SURGE_EVENTS": json.dumps([{"id": e["id"], "weight": e["weight"]} for e in events]),
        "SURGE_TRACE": str(paths["trace"]),
        "SURGE_OUTCOMES": str(paths["outcomes"]),
    }
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(ROOT / "load" / "locustfile.py"),
        "--headless",
        "-u",
        str(args.users),
        "-r",
        str(args.spawn_rate),
        "-t",
        f"{args.duration}s",
        "--host",
        stack.base_url,
        "--csv",
        str(paths["csv"]),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    print(f"surge: locust {args.users} users, +{args.spawn_rate}/s, {args.duration} s", flush=True)
    with paths["locust_log"].open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        started = time.monotonic()
        deadline = started + args.duration + 60
        client = redis.Redis.from_url(stack.redis_url)
        try:
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    proc.kill()
                    raise RuntimeError(f"locust overran; log: {paths['locust_log']}")
                time.sleep(5)
                waiting = sum(int(client.zcard(RoomKeys(str(e["id"])).queue)) for e in events)
                active = sum(int(client.zcard(RoomKeys(str(e["id"])).active)) for e in events)
                done = _count_lines(paths["outcomes"])
                print(
                    f"  t={time.monotonic() - started:5.0f}s  waiting {waiting:4d}"
                    f"  active {active:4d}  journeys ended {done}",
                    flush=True,
                )
        finally:
            client.close()
    return int(proc.returncode or 0)


def _count_lines(path: Path) -> int:
    try:
        with path.open() as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


async def settle(database_url: str) -> int:
    """Wait (bounded) until no payment is pending; returns how many still are."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            pending = int(
                await conn.fetchval("SELECT count(*) FROM payments WHERE status = 'pending'")
            )
            if pending == 0 or time.monotonic() > deadline:
                return pending
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def database_facts(database_url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(database_url)
    try:
        holders = await conn.fetch("SELECT DISTINCT event_id, user_id FROM reservations")
        paid_users = await conn.fetch(
            "SELECT DISTINCT event_id, user_id FROM reservations WHERE status = 'paid'"
        )
        res_status = await conn.fetch(
            "SELECT event_id, status, count(*) AS n FROM reservations GROUP BY 1, 2"
        )
        pay_status = await conn.fetch(
            "SELECT r.event_id, p.status, count(*) AS n FROM payments p"
            " JOIN reservations r ON r.id = p.reservation_id GROUP BY 1, 2"
        )
        seats_sold = await conn.fetch(
            "SELECT r.event_id, count(*) AS n FROM reservation_seats rs"
            " JOIN reservations r ON r.id = rs.reservation_id WHERE r.status = 'paid' GROUP BY 1"
        )
        seats_total = await conn.fetch("SELECT event_id, count(*) AS n FROM seats GROUP BY 1")
        sold_twice = await conn.fetchval(
            "SELECT count(*) FROM (SELECT rs.seat_id FROM reservation_seats rs"
            " JOIN reservations r ON r.id = rs.reservation_id WHERE r.status = 'paid'"
            " GROUP BY rs.seat_id HAVING count(*) > 1) x"
        )
        active_twice = await conn.fetchval(
            "SELECT count(*) FROM (SELECT seat_id FROM reservation_seats WHERE active"
            " GROUP BY seat_id HAVING count(*) > 1) x"
        )
        paid_without_success = await conn.fetchval(
            "SELECT count(*) FROM reservations r WHERE r.status = 'paid' AND NOT EXISTS"
            " (SELECT 1 FROM payments p WHERE p.reservation_id = r.id AND p.status = 'succeeded')"
        )
        success_not_paid = await conn.fetchval(
            "SELECT count(*) FROM payments p JOIN reservations r ON r.id = p.reservation_id"
            " WHERE p.status = 'succeeded' AND r.status <> 'paid'"
        )
        failure_reasons = await conn.fetch(
            "SELECT coalesce(failure_reason, '') AS reason, count(*) AS n FROM payments"
            " WHERE status = 'failed' GROUP BY 1 ORDER BY 2 DESC"
        )
        payment_seconds = await conn.fetch(
            "SELECT status, count(*) AS n,"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS p50,"
            " percentile_cont(0.95) WITHIN GROUP (ORDER BY s) AS p95"
            " FROM (SELECT status, extract(epoch FROM updated_at - created_at)::float8 AS s"
            "       FROM payments WHERE status <> 'pending') x GROUP BY 1"
        )
        multi_success = await conn.fetchval(
            "SELECT count(*) FROM (SELECT reservation_id FROM payments WHERE status = 'succeeded'"
            " GROUP BY 1 HAVING count(*) > 1) x"
        )
    finally:
        await conn.close()

    def per_event(rows: list[Any]) -> dict[int, dict[str, int]]:
        out: dict[int, dict[str, int]] = {}
        for r in rows:
            out.setdefault(int(r["event_id"]), {})[r["status"]] = int(r["n"])
        return out

    holders_by: dict[int, set[str]] = {}
    for r in holders:
        holders_by.setdefault(int(r["event_id"]), set()).add(str(r["user_id"]))
    paid_by: dict[int, set[str]] = {}
    for r in paid_users:
        paid_by.setdefault(int(r["event_id"]), set()).add(str(r["user_id"]))
    return {
        "holders": holders_by,
        "paid_users": paid_by,
        "reservations": per_event(list(res_status)),
        "payments": per_event(list(pay_status)),
        "seats_sold": {int(r["event_id"]): int(r["n"]) for r in seats_sold},
        "seats_total": {int(r["event_id"]): int(r["n"]) for r in seats_total},
        "payment_failure_reasons": {r["reason"]: int(r["n"]) for r in failure_reasons},
        "payment_seconds_in_db": {
            r["status"]: {"n": int(r["n"]), "p50": round(r["p50"], 2), "p95": round(r["p95"], 2)}
            for r in payment_seconds
        },
        "seats_sold_twice": int(sold_twice),
        "seats_active_twice": int(active_twice),
        "paid_without_succeeded_payment": int(paid_without_success),
        "succeeded_payment_not_paid": int(success_not_paid),
        "reservations_with_two_successes": int(multi_success),
    }


def redis_facts(url: str, event_ids: list[int]) -> dict[int, dict[str, Any]]:
    client = redis.Redis.from_url(url, decode_responses=True)
    out: dict[int, dict[str, Any]] = {}
    try:
        for eid in event_ids:
            k = RoomKeys(str(eid))
            out[eid] = {
                "seq": int(client.get(k.seq) or 0),
                "waiting": int(client.zcard(k.queue)) + int(client.zcard(k.pre)),
                "active": int(client.zcard(k.active)),
                "users": set(client.hkeys(k.users)),
                "not_admitted": set(client.hkeys(k.joined)),
                "queue": set(client.zrange(k.queue, 0, -1)),
            }
    finally:
        client.close()
    return out


def metric_facts(base_url: str) -> dict[str, Any]:
    text = httpx.get(f"{base_url}/metrics", timeout=30).text
    admitted: dict[int, float] = {}
    eta: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            event = s.labels.get("event")
            if event is None:
                continue
            if s.name == "waitingroom_admitted_total":
                admitted[int(event)] = s.value
            elif s.name.startswith("waitingroom_eta_error_seconds"):
                suffix = s.name.removeprefix("waitingroom_eta_error_seconds")
                entry = eta.setdefault(event, {})
                if suffix == "_bucket":
                    entry[f"le {s.labels['le']}"] = s.value
                elif suffix in ("_sum", "_count"):
                    entry[suffix[1:]] = s.value
    return {"admitted": admitted, "eta": eta}


def load_outcomes(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def account(
    events: list[dict[str, Any]],
    outcomes: list[dict[str, Any]],
    db: dict[str, Any],
    rds: dict[int, dict[str, Any]],
    metrics: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[str]]:
    rows, problems = [], []
    for e in events:
        eid = int(e["id"])
        mine = [o for o in outcomes if o["event_id"] == eid]
        by_user = {str(o["user_id"]): o for o in mine if "user_id" in o}
        r = rds[eid]
        holders = db["holders"].get(eid, set())
        paid = db["paid_users"].get(eid, set())
        # Server side: a user is admitted once the join record is gone (the admission script
        # deletes it) while the user is still known; buyers who completed a purchase were
        # removed entirely and are the paid users.
        admitted_set = (r["users"] - r["not_admitted"] - r["queue"]) | paid
        counter = int(metrics["admitted"].get(eid, 0))
        client_admitted = {u for u, o in by_user.items() if o["admitted"]}
        no_hold = Counter(
            o["outcome"] for u, o in by_user.items() if o["admitted"] and u not in holders
        )
        never_claimed = admitted_set - holders - client_admitted
        never_claimed_why = Counter(
            by_user[u]["outcome"] if u in by_user else "no journey record" for u in never_claimed
        )
        explained = len(holders) + sum(no_hold.values()) + len(never_claimed)
        res = db["reservations"].get(eid, {})
        pays = db["payments"].get(eid, {})
        row = {
            "event": eid,
            "kind": e["spec"].kind,
            "seats": db["seats_total"].get(eid, 0),
            "joined": r["seq"],
            "waiting_at_end": r["waiting"],
            "admitted_counter": counter,
            "admitted_set": len(admitted_set),
            "held": len(holders),
            "admitted_no_hold": dict(no_hold),
            "never_claimed": dict(never_claimed_why),
            "explained": explained,
            "reservations": res,
            "payments": pays,
            "seats_sold": db["seats_sold"].get(eid, 0),
            "client_paid": sum(1 for o in mine if o["outcome"] == "paid"),
        }
        rows.append(row)
        if r["seq"] != r["waiting"] + counter:
            problems.append(
                f"event {eid}: joined {r['seq']} != waiting {r['waiting']} + admitted {counter}"
            )
        if len(admitted_set) != counter:
            problems.append(f"event {eid}: admitted set {len(admitted_set)} != counter {counter}")
        if explained != len(admitted_set):
            problems.append(f"event {eid}: explained {explained} != admitted {len(admitted_set)}")
        if not holders <= admitted_set:
            problems.append(f"event {eid}: holders without admission: {holders - admitted_set}")
        bad = {
            k: v for k, v in never_claimed_why.items() if k not in ("left_waiting", "interrupted")
        }
        if bad:
            problems.append(f"event {eid}: admitted, never claimed, unexplained: {bad}")
        if res.get("paid", 0) != pays.get("succeeded", 0):
            problems.append(
                f"event {eid}: paid {res.get('paid', 0)} != succeeded {pays.get('succeeded', 0)}"
            )
    for name in (
        "seats_sold_twice",
        "seats_active_twice",
        "paid_without_succeeded_payment",
        "succeeded_payment_not_paid",
        "reservations_with_two_successes",
    ):
        if db[name]:
            problems.append(f"{name}: {db[name]}")
    return rows, problems


def _le(key: str) -> float:
    return float(key.removeprefix("le "))


def eta_accuracy(metrics: dict[str, Any], outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    # Server histogram, all events merged: predicted at join minus the actual wait.
    buckets: Counter[float] = Counter()
    total: float | None = 0.0
    count = 0.0
    for entry in metrics["eta"].values():
        for k, v in entry.items():
            if k.startswith("le "):
                buckets[_le(k)] += v
        # prometheus-client omits _sum for a histogram with negative buckets.
        total = None if total is None or "sum" not in entry else total + entry["sum"]
        count += entry.get("count", 0.0)

    def quantile(q: float) -> float | None:
        if not count:
            return None
        for le in sorted(buckets):
            if buckets[le] >= q * count:
                return le
        return None

    within = {
        f"|err| <= {b} s": round((buckets.get(float(b), 0) - buckets.get(float(-b), 0)) / count, 3)
        if count
        else None
        for b in (2, 5, 10)
    }
    server = {
        "count": int(count),
        "mean_error_seconds": round(total / count, 2) if count and total is not None else None,
        "median_bucket_le": quantile(0.5),
        "p10_bucket_le": quantile(0.1),
        "p90_bucket_le": quantile(0.9),
        "share_within": within,
    }
    # Client side: ETA at join vs the wait until the buyer saw "admitted" (poll granularity).
    errors = [
        o["eta"] - (o["admitted_seen_at"] - o["joined_at"])
        for o in outcomes
        if o.get("admitted") and o.get("eta") is not None and "admitted_seen_at" in o
    ]
    client: dict[str, Any] = {"count": len(errors)}
    if errors:
        absolute = sorted(abs(x) for x in errors)
        client.update(
            median_error_seconds=round(statistics.median(errors), 2),
            median_abs_error_seconds=round(statistics.median(absolute), 2),
            p90_abs_error_seconds=round(absolute[int(0.9 * (len(absolute) - 1))], 2),
            share_abs_within_5s=round(sum(1 for x in absolute if x <= 5) / len(absolute), 3),
        )
    return {"server_histogram": server, "client_observed": client}


def payment_latency(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """Seconds from the 202 to the buyer seeing paid/failed (polls every 0.4 s)."""
    waits = sorted(
        o["settled_at"] - o["pay_requested_at"]
        for o in outcomes
        if "settled_at" in o and "pay_requested_at" in o
    )
    if not waits:
        return {"count": 0}
    return {
        "count": len(waits),
        "median_seconds": round(statistics.median(waits), 2),
        "p95_seconds": round(waits[int(0.95 * (len(waits) - 1))], 2),
        "max_seconds": round(waits[-1], 2),
    }


def route_stats(csv_prefix: Path) -> list[dict[str, str]]:
    path = Path(f"{csv_prefix}_stats.csv")
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def eviction_preview(trace: Path) -> list[str]:
    out = []
    for policy in ("lru", "lfu", "fifo"):
        try:
            r = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "load.eviction",
                    "--trace",
                    str(trace),
                    "--policy",
                    policy,
                    "--capacity",
                    "4",
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            out.append(r.stdout.strip() or r.stderr.strip().splitlines()[-1])
        except (subprocess.TimeoutExpired, IndexError) as exc:
            out.append(f"{policy}: {exc!r}")
    return out


def diagnosis(report: dict[str, Any]) -> list[str]:
    """A sentence on the bottleneck, when the numbers show one."""
    reasons = report["payments"]["failure_reasons"]
    expired = sum(v for k, v in reasons.items() if k.startswith("hold expired"))
    settled = sum(v["n"] for v in report["payments"]["seconds_in_db"].values())
    pending = report["checks"]["pending_after_settle"]
    if settled + pending and (expired + pending) / (settled + pending) > 0.1:
        hold = report["parameters"]["server_env"]["HOLD_SECONDS"]
        workers = report["parameters"]["workers"]
        return [
            f"**Bottleneck: payment completion.** {expired} payments failed because the hold"
            f" ({hold} s) expired while the job waited in the RQ queue, and {pending} were still"
            f" pending after the settle wait: {workers} worker(s) complete jobs one at a time"
            " (each pays the provider's latency), fewer per second than buyers pay. Workers are"
            " stateless: rerun with `--workers 3` to compare.",
            "",
        ]
    return []


def markdown(report: dict[str, Any]) -> str:
    m, p = report["machine"], report["parameters"]
    lines = [
        "# Surge simulation",
        "",
        f"- date: {report['date']}; wall time {report['seconds']} s",
        f"- machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; 1-minute load average"
        f" before the run {m.get('loadavg_1m', '?')}; Locust, one uvicorn"
        f" process, {p['workers']} RQ worker(s), PostgreSQL and Redis all share these cores",
        f"- command: `.venv/bin/python -m load.surge --users {p['users']} --spawn-rate"
        f" {p['spawn_rate']:g} --duration {p['duration']} --workers {p['workers']}`",
        f"- server env: `{json.dumps(p['server_env'])}`",
        f"- buyer mix: leave while waiting {p['mix']['leave_waiting']}, leave once admitted"
        f" {p['mix']['leave_admitted']}, let the hold expire {p['mix']['let_expire']}; 1-4 seats"
        " per hold, up to 4 attempts on 409",
        "",
        "## Events",
        "",
        "| event | kind | seats | demand weight | admit/s | max active | window s |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for e in report["events"]:
        lines.append(
            f"| {e['id']} | {e['kind']} | {e['seats']} | {e['weight']} | {e['admit_per_second']}"
            f" | {e['max_active']} | {e['window_seconds']} |"
        )
    lines += [
        "",
        "## Accounting of every admission",
        "",
        "joined = waiting at end + admitted (the waiting room's counter and, independently, the"
        " set rebuilt from its Redis hashes); admitted = held seats (PostgreSQL) + admitted"
        " buyers who did not hold (their own record) + admitted after the buyer had already left"
        " the queue (never claimed).",
        "",
        "| event | kind | joined | waiting at end | admitted (counter / set) | held | admitted,"
        " no hold | never claimed | explained | reservations | payments | seats sold / total |",
        "|---:|---|---:|---:|---:|---:|---|---|---:|---|---|---:|",
    ]

    def fmt(d: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(d.items())) or "-"

    totals: Counter[str] = Counter()
    for r in report["accounting"]:
        lines.append(
            f"| {r['event']} | {r['kind']} | {r['joined']} | {r['waiting_at_end']}"
            f" | {r['admitted_counter']} / {r['admitted_set']} | {r['held']}"
            f" | {fmt(r['admitted_no_hold'])} | {fmt(r['never_claimed'])} | {r['explained']}"
            f" | {fmt(r['reservations'])} | {fmt(r['payments'])}"
            f" | {r['seats_sold']} / {r['seats']} |"
        )
        for k in (
            "joined",
            "waiting_at_end",
            "admitted_counter",
            "held",
            "explained",
            "seats_sold",
        ):
            totals[k] += r[k]
    lines.append(
        f"| all | | {totals['joined']} | {totals['waiting_at_end']} | {totals['admitted_counter']}"
        f" | {totals['held']} | | | {totals['explained']} | | | {totals['seats_sold']} |"
    )
    c = report["checks"]
    lines += [
        "",
        f"Checks: seats sold twice **{c['seats_sold_twice']}**; seats in two active reservations"
        f" **{c['seats_active_twice']}**; paid reservations without a succeeded payment"
        f" **{c['paid_without_succeeded_payment']}**; succeeded payments whose reservation is not"
        f" paid **{c['succeeded_payment_not_paid']}**; reservations paid twice"
        f" **{c['reservations_with_two_successes']}**; payments still pending after"
        f" {SETTLE_SECONDS:.0f} s settle: **{c['pending_after_settle']}**.",
        "",
        "Problems: " + ("none" if not report["problems"] else "; ".join(report["problems"])),
        "",
        "Journey outcomes (buyers' own records): "
        + ", ".join(f"{k} {v}" for k, v in sorted(report["journey_outcomes"].items())),
        "",
        "Payment failures by reason: "
        + "; ".join(f"{k} {v}" for k, v in report["payments"]["failure_reasons"].items())
        + ". Payment request to settlement in the database: "
        + "; ".join(
            f"{k} n={v['n']} p50 {v['p50']} s p95 {v['p95']} s"
            for k, v in report["payments"]["seconds_in_db"].items()
        )
        + ".",
        "",
        *diagnosis(report),
        "Payment completion as buyers saw it (202 to paid/failed, 0.4 s polls): "
        + ", ".join(f"{k} {v}" for k, v in report["payment_latency"].items())
        + ".",
        "",
        "## Requests by route (Locust)",
        "",
        "| route | requests | failures | median ms | p95 ms | p99 ms | req/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in report["routes"]:
        lines.append(
            f"| {s['Type']} {s['Name']} | {s['Request Count']} | {s['Failure Count']}"
            f" | {s['Median Response Time']} | {s['95%']} | {s['99%']}"
            f" | {float(s['Requests/s']):.1f} |"
        )
    eta = report["eta_accuracy"]
    sh, cl = eta["server_histogram"], eta["client_observed"]
    lines += [
        "",
        "409 on holds and 429 on polls are expected answers (counted as successes); the"
        " per-ticket poll limit is 2/s and buyers honour Retry-After.",
        "",
        "## ETA accuracy",
        "",
        "Server: `waitingroom_eta_error_seconds` (ETA predicted at join minus the actual wait;"
        f" positive = pessimistic), {sh['count']} admissions: median in bucket"
        f" le {sh['median_bucket_le']}, p10 le {sh['p10_bucket_le']},"
        f" p90 le {sh['p90_bucket_le']}; share within: {sh['share_within']}.",
        "",
        f"Buyers: ETA at join vs the wait until their poll saw `admitted` ({cl['count']} buyers;"
        " includes up to 3 s of poll interval): "
        + ", ".join(f"{k} {v}" for k, v in cl.items() if k != "count")
        + ".",
        "",
        "## Trace",
        "",
        f"`{report['trace']['path']}`: {report['trace']['lines']} reads"
        f" ({report['trace']['distinct']} distinct keys: `seatmap:{{<event>}}` per seat-map read,"
        " `event:{<event>}` per event-page read). Replay:",
        "",
        *[f"    {line}" for line in report["trace"]["preview"]],
        "",
    ]
    return "\n".join(lines)


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

    with Stack(
        database="ticketing_surge", redis_db=10, env=SERVER_ENV, workers=args.workers
    ) as stack:
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
