"""Honest answers after a commit: with Redis down (a redis-server of the test's own, killed),
a hold answers 201, a cancel 200 and a payment request 202, exactly as PostgreSQL committed
them; the seat map is served from PostgreSQL. When Redis is back (empty), the repair paths
finish the lost side effects: the unpaid hold's lost expiry entry -> the full sweep; the lost
payment job -> the sweeper's rescue."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import (
    bearer,
    free_port,
    make_event,
    make_user,
    start_server,
    start_worker,
    stop,
)
from tests.faults import OwnRedis, record_result

pytestmark = pytest.mark.faults

HANG_GUARD_SECONDS = 60.0


def env(redis_url: str) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "RQ_QUEUE": "test-faults-redis",
        "HOLD_SECONDS": "2",
        "SWEEP_INTERVAL_SECONDS": "1",
        "PAYMENT_RESCUE_SECONDS": "1",
        "WORKER_METRICS_PORT": "0",
        "ADMITTER_ENABLED": "0",
        "SEAT_CACHE_STRATEGY": "ttl",
    }


async def status_of(db: asyncpg.Pool, rid: int) -> str:
    return str(await db.fetchval("SELECT status FROM reservations WHERE id = $1", rid))


async def test_answers_after_commit_with_redis_down(
    tmp_path: Path, database_url: str, db: asyncpg.Pool
) -> None:
    cache = OwnRedis(tmp_path, appendonly=False)
    cache.start()
    settings = env(cache.url())
    port = free_port()
    server = start_server(port, **settings)
    worker = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            event = await make_event(http, rows=1, seats_per_row=4)
            eid, seats = event["id"], event["seat_ids"]
            buyer, idler, other = (
                await make_user(http),
                await make_user(http),
                await make_user(http),
            )
            cache.kill()

            # A hold commits: 201, and it is in PostgreSQL.
            r = await http.post(
                f"/api/events/{eid}/holds", json={"seat_ids": [seats[0]]}, headers=bearer(buyer)
            )
            assert r.status_code == 201, r.text
            cancelled = r.json()["reservation_id"]
            assert await status_of(db, cancelled) == "held"
            # The seat map comes from PostgreSQL and shows it.
            r = await http.get(f"/api/events/{eid}/seats")
            assert r.status_code == 200, r.text
            seat_map_source = r.headers["X-Cache"]
            by_id = {s["id"]: s for s in r.json()}
            assert by_id[seats[0]]["status"] != "available" and by_id[seats[1]]["status"] == (
                "available"
            )
            # The cancel commits: 200, and the seat is free for someone else at once.
            r = await http.delete(f"/api/reservations/{cancelled}", headers=bearer(buyer))
            assert r.status_code == 200, r.text
            assert await status_of(db, cancelled) == "cancelled"
            r = await http.post(
                f"/api/events/{eid}/holds", json={"seat_ids": [seats[0]]}, headers=bearer(other)
            )
            assert r.status_code == 201, r.text
            paid = r.json()["reservation_id"]
            # A payment request commits: 202 pending (its job could not be enqueued).
            r = await http.post(
                f"/api/reservations/{paid}/payment",
                headers={**bearer(other), "Idempotency-Key": uuid.uuid4().hex},
            )
            assert r.status_code == 202 and r.json()["status"] == "pending", r.text
            # An unpaid hold whose expiry entry Redis never got.
            r = await http.post(
                f"/api/events/{eid}/holds", json={"seat_ids": [seats[2]]}, headers=bearer(idler)
            )
            assert r.status_code == 201, r.text
            unpaid = r.json()["reservation_id"]

            # Redis comes back empty; a worker repairs what it lost.
            cache.start()
            back_at = time.monotonic()
            worker = start_worker(**settings)
            deadline = time.monotonic() + HANG_GUARD_SECONDS
            while (await status_of(db, paid), await status_of(db, unpaid)) != ("paid", "expired"):
                assert time.monotonic() < deadline, "hang guard: not repaired"
                await asyncio.sleep(0.2)
            repaired_seconds = time.monotonic() - back_at
            sold = await db.fetchval(
                "SELECT count(*) FROM reservations WHERE event_id = $1 AND status = 'paid'", eid
            )
            assert sold == 1
        record_result(
            "redis_down_answers_after_commit",
            hold=201,
            cancel=200,
            payment_request=202,
            seat_map=200,
            seat_map_source=seat_map_source,
            repaired_after_redis_back_seconds=round(repaired_seconds, 1),
            repair_includes_worker_start=True,
        )
    finally:
        stop(server)
        if worker is not None:
            stop(worker)
        cache.kill()
