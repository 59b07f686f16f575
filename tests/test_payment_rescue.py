"""Redis is rebuildable: a payment whose RQ job was lost with a Redis flush is still completed,
exactly once (the sweeper finds it pending in PostgreSQL and enqueues it again)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
import redis

from tests.conftest import (
    TEST_REDIS_URL,
    bearer,
    free_port,
    make_event,
    make_user,
    start_server,
    start_worker,
    stop,
)

# A Redis db of this test's own: it is flushed on purpose.
RESCUE_REDIS_URL = TEST_REDIS_URL.rsplit("/", 1)[0] + "/7"
ENV = {
    "REDIS_URL": RESCUE_REDIS_URL,
    "RQ_QUEUE": "test-rescue",
    "SWEEP_INTERVAL_SECONDS": "1",
    "PAYMENT_RESCUE_SECONDS": "1",
    "WORKER_METRICS_PORT": "0",
}
SETTLE_TIMEOUT_SECONDS = 30


async def test_payment_job_lost_with_redis_is_completed_once(
    database_url: str, db: asyncpg.Pool
) -> None:
    client = redis.Redis.from_url(RESCUE_REDIS_URL)
    client.flushdb()
    port = free_port()
    server = start_server(port, **ENV)
    worker = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            event = await make_event(http, rows=1, seats_per_row=2)
            user = await make_user(http)
            r = await http.post(
                f"/api/events/{event['id']}/holds",
                json={"seat_ids": event["seat_ids"][:1]},
                headers=bearer(user),
            )
            rid = r.json()["reservation_id"]
            r = await http.post(
                f"/api/reservations/{rid}/payment",
                headers={**bearer(user), "Idempotency-Key": "lost-job"},
            )
            assert r.status_code == 202 and r.json()["status"] == "pending"
            client.flushdb()  # Redis lost everything: the queued payment job is gone
            worker = start_worker(**ENV)
            deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
            status = "pending"
            while time.monotonic() < deadline and status == "pending":
                await asyncio.sleep(0.3)
                status = await db.fetchval(
                    "SELECT status FROM payments WHERE reservation_id = $1", rid
                )
            assert status == "succeeded"
            body = (await http.get(f"/api/reservations/{rid}", headers=bearer(user))).json()
            assert body["status"] == "paid"
            payments = await db.fetchval(
                "SELECT count(*) FROM payments WHERE reservation_id = $1", rid
            )
            assert payments == 1
    finally:
        stop(server)
        if worker is not None:
            stop(worker)
        client.flushdb()
        client.close()
