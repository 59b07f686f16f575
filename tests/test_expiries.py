"""The hold-expiry schedule: one Redis sorted set per deployment, written by the hold path,
cleared by a cancel, popped by the workers only when due."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import redis
import redis.asyncio as aioredis

from booking.expiries import expiry_key, pop_due, reschedule, schedule_expiry, unschedule_expiry
from tests.conftest import TEST_REDIS_URL, bearer, make_event, make_user

KEY = expiry_key("test-ticketing")  # the live server's RQ_QUEUE


async def test_pop_due_takes_only_due_entries_once(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    key = "hold-expiries:test-unit"
    try:
        await client.delete(key)
        for rid, at in [(1, 100.0), (2, 200.0), (3, 300.0)]:
            await schedule_expiry(client, key, rid, datetime.fromtimestamp(at, UTC))
        assert await pop_due(client, key, now=200.0) == [1, 2]
        assert await pop_due(client, key, now=200.0) == []  # popped once
        await reschedule(client, key, {2: datetime.fromtimestamp(250.0, UTC)})
        await unschedule_expiry(client, key, 3)
        assert await pop_due(client, key, now=1000.0) == [2]
        assert await pop_due(client, key, now=1, limit=10) == []
    finally:
        await client.delete(key)
        await client.aclose()


async def test_hold_schedules_its_expiry_and_cancel_removes_it(http: httpx.AsyncClient) -> None:
    event = await make_event(http, rows=1, seats_per_row=2)
    user = await make_user(http)
    r = await http.post(
        f"/api/events/{event['id']}/holds",
        json={"seat_ids": event["seat_ids"][:1]},
        headers=bearer(user),
    )
    assert r.status_code == 201, r.text
    rid = r.json()["reservation_id"]
    expires_at = datetime.fromisoformat(r.json()["expires_at"]).timestamp()
    client = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        assert client.zscore(KEY, str(rid)) == expires_at
        assert (
            await http.delete(f"/api/reservations/{rid}", headers=bearer(user))
        ).status_code == 200
        assert client.zscore(KEY, str(rid)) is None  # nothing left to fire for a cancelled hold
    finally:
        client.close()
