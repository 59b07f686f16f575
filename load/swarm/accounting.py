"""Every buyer accounted for: the journeys the Locust workers wrote, checked against the database
and the waiting room's own join counters."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg

from load.swarm.distributed import RedisLayout

NOT_JOINED = {"no_account", "challenge_failed", "join_failed", "joining_at_end"}
STILL_WAITING = {"waiting_at_end"}
GAVE_UP = {"gave_up"}
# A join answered with one of these may still have been queued by the server: 0 is no answer
# within the client's timeout; 502/504 are nginx's when the web process did not answer in time
# or dropped the connection after the request was sent.
ANSWER_LOST = {0, 502, 504}


def load_outcomes(folder: Path) -> list[dict[str, Any]]:
    journeys: list[dict[str, Any]] = []
    for path in sorted(folder.glob("outcomes-*.jsonl")):
        journeys.extend(json.loads(line) for line in path.read_text().splitlines() if line)
    return journeys


async def database_facts(database_url: str, event_ids: list[int]) -> dict[str, Any]:
    conn = await asyncpg.connect(database_url)
    try:

        async def count(sql: str) -> int:
            return int(await conn.fetchval(sql, event_ids))

        paid_users = await conn.fetch(
            "SELECT DISTINCT user_id FROM reservations WHERE status = 'paid'"
            " AND event_id = ANY($1::bigint[])",
            event_ids,
        )
        return {
            "users": int(await conn.fetchval("SELECT count(*) FROM users")),
            "paid_user_ids": sorted(int(r["user_id"]) for r in paid_users),
            "paid_reservations": await count(
                "SELECT count(*) FROM reservations WHERE status = 'paid'"
                " AND event_id = ANY($1::bigint[])"
            ),
            "succeeded_payments": await count(
                "SELECT count(*) FROM payments p JOIN reservations r ON r.id = p.reservation_id"
                " WHERE p.status = 'succeeded' AND r.event_id = ANY($1::bigint[])"
            ),
            "pending_payments": await count(
                "SELECT count(*) FROM payments p JOIN reservations r ON r.id = p.reservation_id"
                " WHERE p.status = 'pending' AND r.event_id = ANY($1::bigint[])"
            ),
            "seats_total": await count(
                "SELECT count(*) FROM seats WHERE event_id = ANY($1::bigint[])"
            ),
            "seats_sold": await count(
                "SELECT count(*) FROM reservation_seats rs JOIN reservations r"
                " ON r.id = rs.reservation_id WHERE r.status = 'paid'"
                " AND r.event_id = ANY($1::bigint[])"
            ),
            "seats_sold_twice": await count(
                "SELECT count(*) FROM (SELECT rs.seat_id FROM reservation_seats rs"
                " JOIN reservations r ON r.id = rs.reservation_id WHERE r.status = 'paid'"
                " AND r.event_id = ANY($1::bigint[]) GROUP BY rs.seat_id HAVING count(*) > 1) x"
            ),
            "seats_active_twice": await count(
                "SELECT count(*) FROM (SELECT rs.seat_id FROM reservation_seats rs"
                " JOIN seats s ON s.id = rs.seat_id WHERE rs.active"
                " AND s.event_id = ANY($1::bigint[]) GROUP BY rs.seat_id HAVING count(*) > 1) x"
            ),
        }
    finally:
        await conn.close()


def joins_counted_by_redis(layout: RedisLayout, event_ids: list[int]) -> int:
    """Arrivals the waiting rooms numbered (each buyer joins once)."""
    with layout.client() as client:
        return sum(int(client.get(layout.room_keys(e).seq) or 0) for e in event_ids)


def account(
    journeys: list[dict[str, Any]], db: dict[str, Any], redis_joins: int, spawned: int
) -> dict[str, Any]:
    """The four fates of a joined buyer, and the checks that the database agrees."""
    paid_in_db = set(db["paid_user_ids"])
    fates: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    reasons_unseen: Counter[str] = Counter()
    not_joined: Counter[str] = Counter()
    outcomes = Counter(str(j.get("outcome")) for j in journeys)
    bought_ids: set[int] = set()
    for j in journeys:
        outcome = str(j.get("outcome"))
        if outcome in NOT_JOINED:
            fates["not_joined"] += 1
            status = j.get("join_status", j.get("challenge_status"))
            not_joined[outcome if status is None else f"{outcome} ({status})"] += 1
        elif outcome in STILL_WAITING:
            fates["still_waiting"] += 1
        elif outcome in GAVE_UP:
            fates["gave_up"] += 1
        elif outcome == "paid" or (j.get("reservation_id") and j["user_id"] in paid_in_db):
            # A buyer who held seats and whose payment answer or final status never came
            # (timeout, run ended) bought if the database says so: it decides, not the client.
            fates["admitted_and_bought"] += 1
            bought_ids.add(int(j["user_id"]))
            if outcome != "paid":
                reasons_unseen[outcome] += 1
        else:
            fates["admitted_not_bought"] += 1
            reasons[outcome] += 1
    joined = sum(1 for j in journeys if j.get("ticket"))
    # A join whose answer never came (client timeout, proxy timeout) may still have been queued.
    unanswered_joins = sum(1 for j in journeys if j.get("join_status") in ANSWER_LOST)
    user_ids = [j["user_id"] for j in journeys if j.get("user_id")]
    accounts = len(set(user_ids))
    checks = {
        "all requested buyers arrived (Locust spawned each)": len(journeys) == spawned,
        "each buyer used an account of its own": accounts == len(journeys) == len(user_ids),
        "joins the waiting rooms counted = joined buyers (+ joins whose answer was lost)": joined
        <= redis_joins
        <= joined + unanswered_joins,
        "every joined buyer has one of the four fates": joined
        == sum(fates[f] for f in fates if f != "not_joined"),
        "buyers who bought = buyers with a paid reservation": bought_ids == paid_in_db,
        "paid reservations = succeeded payments": db["paid_reservations"]
        == db["succeeded_payments"],
        "no seat sold twice": db["seats_sold_twice"] == 0,
        "no seat held twice": db["seats_active_twice"] == 0,
        "no payment left pending": db["pending_payments"] == 0,
    }
    return {
        "requested": spawned,
        "journeys": len(journeys),
        "accounts": accounts,
        "joined": joined,
        "redis_joins": redis_joins,
        "unanswered_joins": unanswered_joins,
        "bought_but_answer_lost": dict(reasons_unseen),
        "fates": dict(fates),
        "not_bought_reasons": dict(reasons),
        "not_joined_reasons": dict(not_joined),
        "outcomes": dict(outcomes),
        "checks": checks,
        "all_checks_pass": all(checks.values()),
    }
