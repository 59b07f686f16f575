"""The bounded in-process tier (SEAT_CACHE_CAPACITY > 0) in front of a Redis strategy."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from booking.cache.local import LocalTier
from tests.cache_helpers import KEY, DbLoader, FakeClock, make_cache, metric

pytest_plugins = ["tests.cache_fixtures"]


@pytest.mark.parametrize("policy", ["lru", "lfu", "fifo", "s3fifo", "wtinylfu"])
async def test_local_tier_answers_without_redis_until_its_ttl(
    redis_client: Redis, policy: str
) -> None:
    clock = FakeClock()  # the local TTL runs out when the test says, not when the machine is slow
    cache = make_cache(
        "ttl",
        redis_client,
        clock=clock,
        seat_cache_capacity=4,
        seat_cache_eviction=policy,
        seat_cache_ttl_seconds=5.0,
    )
    assert isinstance(cache, LocalTier)
    loader = DbLoader(None)
    await cache.get(KEY, loader)
    await redis_client.flushdb()  # only the local copy is left
    assert (await cache.get(KEY, loader)).source == "hit"
    clock.advance(0.55)  # past the local TTL (0.5 s); Redis is empty, so: a load
    assert (await cache.get(KEY, loader)).source == "load"
    assert loader.calls == 2
    await cache.aclose()


async def test_local_tier_counts_evictions(redis_client: Redis) -> None:
    cache = make_cache("ttl", redis_client, seat_cache_capacity=2, seat_cache_eviction="lru")
    loader = DbLoader(None)
    before = metric("seat_cache_evictions_total", "ttl")
    for event in range(5):
        await cache.get(f"seatmap:{{{event}}}", loader)
    assert metric("seat_cache_evictions_total", "ttl") - before == 3
    await cache.aclose()


async def test_local_tier_drops_its_copy_on_invalidate(redis_client: Redis) -> None:
    cache = make_cache("ttl", redis_client, seat_cache_capacity=4, seat_cache_ttl_seconds=5.0)
    loader = DbLoader(None)
    await cache.get(KEY, loader)
    loader.bump()
    await cache.invalidate(KEY)
    got = await cache.get(KEY, loader)
    assert got.source == "load" and b'"version": 1' in got.value
    await cache.aclose()


async def test_opt_is_refused_for_the_live_tier(redis_client: Redis) -> None:
    with pytest.raises(ValueError, match="offline"):
        make_cache("ttl", redis_client, seat_cache_capacity=4, seat_cache_eviction="opt")
