"""The staleness bound: while holds change the seats (and invalidate), no read returns data
read from the database more than SEAT_CACHE_STALE_BOUND_SECONDS before it, and strategies that
delete on invalidation show a change to every read that starts after the invalidation."""

from __future__ import annotations

import asyncio
import bisect
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from booking.cache.base import CachedValue, Envelope
from booking.cache.strategy import RedisLock, RedisStore, RedisStrategy
from tests.cache_helpers import KEY, DbLoader, make_cache, version_of

pytest_plugins = ["tests.cache_fixtures"]

TTL = 0.5
BOUND = 1.0
DELETES_ON_INVALIDATE = {"ttl", "singleflight", "xfetch-pure"}
WRITE_EVERY = 0.15  # seconds between a writer's changes
MIN_READS_EACH = 30  # 8 readers: at least 240 reads however slow the machine


async def run_workload(
    redis_client: Redis, strategy: str, seconds: float = 3.0, **overrides: Any
) -> tuple[DbLoader, list[float], list[tuple[float, CachedValue]]]:
    cache = make_cache(
        strategy,
        redis_client,
        seat_cache_ttl_seconds=TTL,
        seat_cache_stale_bound_seconds=BOUND,
        **overrides,
    )
    # asyncio-only query cost: the point here is ordering, not database load
    loader = DbLoader(None)
    invalidated: list[float] = []  # when each invalidate() had returned
    reads: list[tuple[float, CachedValue]] = []
    # Counted, not timed: a busy machine makes the run longer, not thinner.
    writes = round(seconds / WRITE_EVERY)
    writes_done = asyncio.Event()
    hang_guard = time.monotonic() + 20 * seconds

    async def slow_loader() -> bytes:
        value = await loader()  # the version is taken before the "query" runs
        await asyncio.sleep(0.08)
        return value

    async def writer() -> None:
        for _ in range(writes):
            await asyncio.sleep(WRITE_EVERY)
            loader.bump()
            await cache.invalidate(KEY)
            invalidated.append(time.time())
        writes_done.set()

    async def reader() -> None:
        n = 0
        while (n < MIN_READS_EACH or not writes_done.is_set()) and time.monotonic() < hang_guard:
            started = time.time()
            reads.append((started, await cache.get(KEY, slow_loader)))
            n += 1
            await asyncio.sleep(0.005)

    await asyncio.gather(writer(), *(reader() for _ in range(8)))
    await cache.aclose()
    return loader, invalidated, reads


def assert_within_bound(loader: DbLoader, reads: list[tuple[float, CachedValue]]) -> None:
    assert len(reads) > 200
    for started, got in reads:
        assert got.age_seconds <= BOUND
        # every change committed more than BOUND before the read began must be in the answer
        must_include = bisect.bisect_left(loader.changed_at, started - BOUND)
        assert version_of(got.value) >= must_include, (started, got)


@pytest.mark.parametrize(
    "strategy", ["ttl", "lock", "singleflight", "xfetch", "xfetch-pure", "swr"]
)
async def test_changes_show_within_the_bound(redis_client: Redis, strategy: str) -> None:
    loader, invalidated, reads = await run_workload(redis_client, strategy)
    assert loader.version >= 15
    assert_within_bound(loader, reads)
    if strategy in DELETES_ON_INVALIDATE:
        # read-your-writes: a read that starts after invalidate() returned sees the change
        for started, got in reads:
            assert version_of(got.value) >= bisect.bisect_left(invalidated, started)
    else:  # lock/swr do use their stale window (else this test would prove nothing about it)
        assert any(got.stale for _, got in reads)


async def test_bound_holds_without_invalidation(redis_client: Redis) -> None:
    loader, _, reads = await run_workload(redis_client, "swr", seat_cache_invalidate_on_write=False)
    assert_within_bound(loader, reads)


async def test_bound_holds_with_the_in_process_tier(redis_client: Redis) -> None:
    loader, _, reads = await run_workload(
        redis_client, "lock", seat_cache_capacity=8, seat_cache_eviction="lru"
    )
    assert_within_bound(loader, reads)
    assert any(got.source == "hit" for _, got in reads)


@pytest.mark.parametrize("strategy", ["lock", "xfetch", "swr"])
async def test_values_older_than_the_bound_are_never_served_stale(
    redis_client: Redis, strategy: str
) -> None:
    cache = make_cache(
        strategy, redis_client, seat_cache_stale_bound_seconds=BOUND, seat_cache_lock_ttl_ms=300
    )
    now = time.time()
    too_old = Envelope(b'{"version": 0}', now - BOUND - 0.05, 0.01, now - 0.5)
    await RedisStore(redis_client).write(KEY, too_old, 10.0)
    # Someone else is recomputing: the only way not to wait would be serving the too-old copy.
    await redis_client.set(RedisLock(redis_client, 0.3).key(KEY), "other", px=300)
    loader = DbLoader(None)
    loader.version = 1
    got = await cache.get(KEY, loader)
    assert not got.stale and got.source == "load" and version_of(got.value) == 1
    await cache.aclose()


@pytest.mark.parametrize("strategy", ["lock", "xfetch", "swr"])
async def test_invalidation_marks_stale_but_keeps_a_servable_copy(
    redis_client: Redis, strategy: str
) -> None:
    cache = make_cache(strategy, redis_client, seat_cache_ttl_seconds=5.0)
    loader = DbLoader(None)
    await cache.get(KEY, loader)
    loader.bump()
    await cache.invalidate(KEY)
    # lock, xfetch: this reader takes the lock and loads; swr: served stale, refreshed behind
    first = await cache.get(KEY, loader)
    assert (first.source, version_of(first.value)) == (
        ("stale", 0) if strategy == "swr" else ("load", 1)
    )
    assert isinstance(cache, RedisStrategy)
    await cache.wait_refreshes()  # swr's refresh runs behind the reader: let it finish
    second = await cache.get(KEY, loader)
    assert (second.source, version_of(second.value)) == ("hit", 1)
    await cache.aclose()
