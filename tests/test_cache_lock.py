"""The lock strategy's failure modes: a holder that dies (crash or cancellation) must not block
readers beyond the lock TTL."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from redis.asyncio import Redis

from booking.cache.strategy import RedisLock
from tests.cache_helpers import KEY, DbLoader, make_cache

pytest_plugins = ["tests.cache_fixtures"]

LOCK_TTL = 0.5
# The value loaded in a burst stays fresh however long a busy machine takes to finish the burst,
# so a second load can only mean a second lock holder.
LONG_FRESHNESS: dict[str, Any] = {
    "seat_cache_ttl_seconds": 60.0,
    "seat_cache_stale_bound_seconds": 60.0,
}


async def test_crashed_holder_blocks_no_longer_than_the_lock_ttl(
    redis_client: Redis, pg_pool: asyncpg.Pool
) -> None:
    # The cache's own lock TTL (and so its waiters' give-up deadline, 2 x TTL) is long: on a
    # busy machine nobody gives up and loads unguarded, so one load proves the waiters took the
    # lock once the dead holder's lock expired.
    cache = make_cache("lock", redis_client, seat_cache_lock_ttl_ms=5000, **LONG_FRESHNESS)
    # A holder that took the lock and crashed before releasing it: the key just sits there.
    await redis_client.set(RedisLock(redis_client, LOCK_TTL).key(KEY), "dead", px=500)
    loader = DbLoader(pg_pool, delay=0.05)
    started = time.monotonic()
    results = await asyncio.gather(*(cache.get(KEY, loader) for _ in range(200)))
    elapsed = time.monotonic() - started
    assert loader.calls == 1  # still one load, by whoever got the lock after it expired
    assert elapsed >= LOCK_TTL * 0.8  # they did respect the lock ...
    assert elapsed < 2 * 5.0  # ... and were not held to their own give-up deadline (hang guard)
    assert sum(r.source == "load" for r in results) == 1
    await cache.aclose()


async def test_cancelled_holder_releases_the_lock(
    redis_client: Redis, pg_pool: asyncpg.Pool
) -> None:
    cache = make_cache("lock", redis_client, seat_cache_lock_ttl_ms=5000, **LONG_FRESHNESS)
    slow = DbLoader(pg_pool, delay=2.0)
    loading = asyncio.Event()

    async def slow_load() -> bytes:
        loading.set()  # the holder has the lock and is in the database now
        return await slow()

    holder = asyncio.create_task(cache.get(KEY, slow_load))
    await loading.wait()
    lock_key = RedisLock(redis_client, 5.0).key(KEY)
    assert await redis_client.exists(lock_key)
    holder.cancel()  # e.g. the client disconnected mid-load
    await asyncio.gather(holder, return_exceptions=True)
    assert not await redis_client.exists(lock_key)
    fast = DbLoader(pg_pool, delay=0.02)
    started = time.monotonic()
    await asyncio.gather(*(cache.get(KEY, fast) for _ in range(100)))
    assert time.monotonic() - started < 5.0  # not held until the lock's 5 s TTL ran out
    assert fast.calls == 1
    await cache.aclose()


async def test_waiters_get_the_holders_value_when_nothing_stale_exists(
    redis_client: Redis, pg_pool: asyncpg.Pool
) -> None:
    cache = make_cache("lock", redis_client, **LONG_FRESHNESS)
    loader = DbLoader(pg_pool, delay=0.2)
    results = await asyncio.gather(*(cache.get(KEY, loader) for _ in range(100)))
    assert loader.calls == 1
    assert sorted({r.source for r in results}) == ["load", "miss"]
    assert len({r.created_at for r in results}) == 1  # everyone got the one load's value
    await cache.aclose()
