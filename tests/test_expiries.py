"""Hold expiry: PostgreSQL's expires_at is the schedule. The workers' due sweep (booking.holds.
expire_due) releases due holds oldest first, a batch at a time, skipping rows another
transaction has locked; a hold and a cancel write nothing else for their expiry."""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Any

import asyncpg
import httpx
import redis

from booking.holds import expire_due
from tests.conftest import TEST_REDIS_URL, bearer, make_event, make_user

WAIT_SECONDS = 60.0


async def _holds(http: httpx.AsyncClient, count: int) -> tuple[dict[str, Any], list[int]]:
    event = await make_event(http, rows=1, seats_per_row=count)
    user = await make_user(http)
    ids = []
    for seat in event["seat_ids"]:
        r = await http.post(
            f"/api/events/{event['id']}/holds", json={"seat_ids": [seat]}, headers=bearer(user)
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["reservation_id"])
    return event, ids


async def test_expire_due_takes_due_holds_oldest_first_in_batches(
    http: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    event, (a, b, c, d) = await _holds(http, 4)
    async with db.acquire() as conn:
        # One snapshot, rolled back at the end: nothing committed meanwhile (other tests' holds
        # falling due) enters the batches, and the live workers never see these holds as due.
        tx = conn.transaction(isolation="repeatable_read")
        await tx.start()
        try:
            await expire_due(conn, 1_000_000)  # whatever else was already due, out of the way
            for rid, seconds_ago in [(a, 30), (b, 10), (c, 20)]:
                await conn.execute(
                    "UPDATE reservations SET expires_at = now() - make_interval(secs => $2)"
                    " WHERE id = $1",
                    rid,
                    float(seconds_ago),
                )
            assert await expire_due(conn, 2) == [(a, event["id"]), (c, event["id"])]
            assert await expire_due(conn, 2) == [(b, event["id"])]
            assert await expire_due(conn, 2) == []  # once each; d is not due
            statuses = dict(
                await conn.fetch(
                    "SELECT id, status FROM reservations WHERE id = ANY($1::bigint[])",
                    [a, b, c, d],
                )
            )
            assert statuses == {a: "expired", b: "expired", c: "expired", d: "held"}
        finally:
            await tx.rollback()


async def test_workers_release_an_overdue_hold_and_its_seat(
    http: httpx.AsyncClient, db: asyncpg.Pool, rq_worker: subprocess.Popen[bytes]
) -> None:
    """Real workers: a hold past its expires_at is released without anyone touching it, and its
    seat can be held again (nothing was scheduled anywhere but in PostgreSQL)."""
    event, (rid,) = await _holds(http, 1)
    await db.execute(
        "UPDATE reservations SET expires_at = now() - interval '1 second' WHERE id = $1", rid
    )
    deadline = time.monotonic() + WAIT_SECONDS
    status = "held"
    while status == "held" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        status = await db.fetchval("SELECT status FROM reservations WHERE id = $1", rid)
    assert status == "expired"
    again = await http.post(
        f"/api/events/{event['id']}/holds",
        json={"seat_ids": event["seat_ids"]},
        headers=bearer(await make_user(http)),
    )
    assert again.status_code == 201, again.text


async def test_a_hold_leaves_no_expiry_entry_in_redis(
    http: httpx.AsyncClient,
) -> None:
    """The schedule that used to live in Redis (hold-expiries:<queue>) is gone for good."""
    await _holds(http, 1)
    client = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        assert list(client.scan_iter(match="*hold-expiries*", count=1000)) == []
    finally:
        client.close()
