"""The surge run: the events, Locust against them, and the raw facts gathered afterwards from
PostgreSQL, Redis and the app's /metrics (load/surge/accounting.py checks them)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

from load.harness import ROOT, Stack, create_event
from waitingroom.keys import RoomKeys

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


async def _create_events(stack: Stack) -> list[dict[str, Any]]:
    events = []
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
        for i, spec in enumerate(EVENT_SPECS):
            event = await create_event(
                http,
                name=f"Surge {spec.kind} {i} {uuid.uuid4().hex[:4]}",
                rows=spec.rows,
                seats_per_row=spec.per_row,
                price=8000,
                waiting_room=True,
                room={
                    "admit_per_second": spec.admit_per_second,
                    "max_active": spec.max_active,
                    "admission_window_seconds": spec.window_seconds,
                },
                with_seats=False,
            )
            events.append({"id": event.id, "weight": spec.weight, "spec": spec})
    return events


def create_events(stack: Stack) -> list[dict[str, Any]]:
    return asyncio.run(_create_events(stack))


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
        str(ROOT / "load" / "surge" / "locustfile.py"),
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
