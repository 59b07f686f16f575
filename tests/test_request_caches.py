"""The per-process caches on the surge paths: room config (bounded age, invalidation) and
bearer tokens (bounded age, revocation bound). Real PostgreSQL; injected clocks."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from booking.bearer_cache import BearerCache
from booking.bearer_lookup import BearerLookup
from booking.bearer_tokens import hash_token
from booking.domain_errors import EventNotFound
from booking.events import SeatBlock, create_event
from booking.room_cache import RoomCache


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


async def test_room_config_is_at_most_ttl_old_and_invalidation_is_immediate(
    db: asyncpg.Pool,
) -> None:
    event_id = await create_event(
        db, "cache", datetime(2030, 1, 1, tzinfo=UTC), [SeatBlock("A", 1, 2, 100)], "", True
    )
    clock = Clock()
    cache = RoomCache(db, ttl_seconds=1.0, clock=clock)
    first = await cache.require(event_id)
    assert first.status == "on_sale" and first.room.enabled
    await db.execute("UPDATE events SET admit_per_second = 77 WHERE id = $1", event_id)
    clock.t += 0.9
    assert (await cache.require(event_id)).room.admit_per_second != 77  # within its bound
    clock.t += 0.1
    assert (await cache.require(event_id)).room.admit_per_second == 77  # bound reached
    await db.execute("UPDATE events SET status = 'closed' WHERE id = $1", event_id)
    cache.invalidate(event_id)  # what an admin change (or its pub/sub message) does
    closed = await cache.require(event_id)
    assert closed.status == "closed" and not closed.room.enabled
    assert await cache.config(10**12) is None
    with pytest.raises(EventNotFound) as info:
        await cache.require(10**12)
    assert info.value.event_id == 10**12 and info.value.kind == "not-found"


def test_bearer_cache_bounds_age_and_size() -> None:
    clock = Clock()
    cache = BearerCache(ttl_seconds=60.0, max_entries=2, clock=clock)
    cache.put(b"a", 1)
    cache.put(b"b", 2)
    assert cache.get(b"a") == 1
    clock.t += 59.9
    assert cache.get(b"b") == 2
    clock.t += 0.1
    assert cache.get(b"a") is None  # a revoked token is accepted for at most ttl_seconds
    cache.put(b"c", 3)
    cache.put(b"d", 4)
    cache.put(b"e", 5)
    assert cache.get(b"c") is None and cache.get(b"e") == 5  # oldest forgotten first
    off = BearerCache(ttl_seconds=0)
    off.put(b"a", 1)
    assert off.get(b"a") is None


async def test_concurrent_bearer_lookups_share_one_query_and_each_gets_its_user(
    db: asyncpg.Pool,
) -> None:
    tokens = [f"lookup-{uuid.uuid4().hex}-{i}" for i in range(6)]
    ids = [
        await db.fetchval(
            "INSERT INTO users (name, email, token_hash) VALUES ('l', $1, $2) RETURNING id",
            f"{uuid.uuid4().hex}@example.com",
            hash_token(t),
        )
        for t in tokens
    ]
    queries: list[str] = []
    lookup = BearerLookup(CountingPool(db, queries))  # type: ignore[arg-type]
    asked = [hash_token(t) for t in tokens] + [hash_token("nobody"), hash_token(tokens[0])]
    found = await asyncio.gather(*(lookup.user_id(h) for h in asked))
    assert found == [*ids, None, ids[0]]
    assert len(queries) == 1  # one round trip for the whole batch
    assert await lookup.user_id(hash_token(tokens[3])) == ids[3]  # a lone lookup
    assert len(queries) == 2


class CountingPool:
    """Forwards to a real pool and records each query sent."""

    def __init__(self, pool: asyncpg.Pool, log: list[str]) -> None:
        self._pool, self._log = pool, log

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        self._log.append(query)
        return list(await self._pool.fetch(query, *args))

    async def fetchval(self, query: str, *args: object) -> object:
        self._log.append(query)
        return await self._pool.fetchval(query, *args)
