"""The surge accounting: every join, admission, hold and payment explained from the facts
load/surge/run.py gathered; also the ETA accuracy and payment latency summaries."""

from __future__ import annotations

import csv
import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any


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
