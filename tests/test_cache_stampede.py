"""200 concurrent reads of one cold or just-expired seat map: how many database loads each
strategy lets through (the loader costs real PostgreSQL time).

The caches run on a FakeClock that stands still during a burst and moves only when a test
expires the key, so a value loaded in the burst cannot expire before the burst ends however
slowly a busy machine runs it; the rng is fixed where XFetch's early draw would add loads; and a
burst's loads wait until every reader has counted its miss (GatedLoader), so whether a slow
reader's miss comes before or after the first load is stored is decided the same way on any
machine: all readers are concurrent with the load."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from redis.asyncio import Redis

from booking.cache import build_seat_cache
from booking.cache.base import CachedValue, SeatCache
from booking.cache.swr import SWRCache
from booking.cache.xfetch import XFetchCache
from tests.cache_helpers import (
    KEY,
    DbLoader,
    FakeClock,
    make_cache,
    metric,
    settings_for,
    version_of,
)

pytest_plugins = ["tests.cache_fixtures"]

CONCURRENCY = 200
UNPROTECTED = ("none", "ttl", "xfetch-pure")  # every reader that misses runs the loader
GATE_TIMEOUT_SECONDS = 30.0  # a hang guard only
LONG_LOCK_MS = 60_000  # the gate holds the lock holder: its lock must not run out meanwhile


class GatedLoader(DbLoader):
    """Once armed for a strategy and n readers, each load waits until those n readers have
    counted their miss (seat_cache_misses_total) before it runs the query."""

    def __init__(self, pool: asyncpg.Pool | None, delay: float = 0.05) -> None:
        super().__init__(pool, delay)
        self._gate: tuple[str, float] | None = None

    def arm(self, strategy: str, readers: int) -> None:
        self._gate = (strategy, metric("seat_cache_misses_total", strategy) + readers)

    async def __call__(self) -> bytes:
        if self._gate is not None:
            strategy, target = self._gate
            deadline = time.monotonic() + GATE_TIMEOUT_SECONDS
            while metric("seat_cache_misses_total", strategy) < target:
                assert time.monotonic() < deadline, "the burst's readers never all missed"
                await asyncio.sleep(0.005)
        return await super().__call__()


async def burst(cache: SeatCache, loader: DbLoader, n: int = CONCURRENCY) -> list[CachedValue]:
    results = await asyncio.gather(*(cache.get(KEY, loader) for _ in range(n)))
    assert all(version_of(r.value) == loader.version for r in results)
    return results


def never_early() -> float:
    """rng for XFetch: u = 1, ln(u) = 0, so no reader recomputes before the logical expiry."""
    return 0.0


async def expire(cache: SeatCache, loader: DbLoader, clock: FakeClock, ttl: float) -> None:
    """Populate the key, then move the clock past its freshness."""
    await cache.get(KEY, loader)
    clock.advance(ttl + 0.1)
    loader.calls = 0


@pytest.mark.parametrize(
    ("strategy", "low", "high"),
    [
        ("none", CONCURRENCY, CONCURRENCY),
        ("ttl", CONCURRENCY, CONCURRENCY),  # the stampede: every reader loads
        ("lock", 1, 1),
        ("singleflight", 1, 1),
        ("swr", 1, 1),  # nothing servable yet: falls back to the lock
        ("xfetch", 1, 1),  # the guard: a cold (or invalidated) key is loaded once
        ("xfetch-pure", CONCURRENCY, CONCURRENCY),  # the formula alone cannot help a cold key
    ],
)
async def test_cold_key(
    redis_client: Redis, pg_pool: asyncpg.Pool, strategy: str, low: int, high: int
) -> None:
    cache = make_cache(
        strategy, redis_client, clock=FakeClock(), rng=never_early,
        seat_cache_lock_ttl_ms=LONG_LOCK_MS,
    )  # fmt: skip
    loader = GatedLoader(pg_pool)
    before = metric("seat_cache_loads_total", strategy)
    misses = metric("seat_cache_misses_total", strategy)
    loader.arm(strategy, CONCURRENCY)
    await burst(cache, loader)
    assert low <= loader.calls <= high
    assert metric("seat_cache_loads_total", strategy) - before == loader.calls
    if strategy in UNPROTECTED:
        assert loader.calls == metric("seat_cache_misses_total", strategy) - misses
    await cache.aclose()


@pytest.mark.parametrize(
    ("strategy", "low", "high"),
    [("ttl", CONCURRENCY, CONCURRENCY), ("lock", 1, 1), ("xfetch", 1, 1)],
)
async def test_just_expired_key(
    redis_client: Redis, pg_pool: asyncpg.Pool, strategy: str, low: int, high: int
) -> None:
    clock = FakeClock()
    cache = make_cache(
        strategy, redis_client, clock=clock, rng=never_early, seat_cache_ttl_seconds=0.3,
        seat_cache_lock_ttl_ms=LONG_LOCK_MS,
    )  # fmt: skip
    loader = GatedLoader(pg_pool)
    await expire(cache, loader, clock, 0.3)
    misses = metric("seat_cache_misses_total", strategy)
    loader.arm(strategy, CONCURRENCY)
    results = await burst(cache, loader)
    assert low <= loader.calls <= high
    if strategy in UNPROTECTED:
        assert loader.calls == metric("seat_cache_misses_total", strategy) - misses
    if strategy == "lock":  # the others took the stale copy instead of waiting
        assert sum(r.source == "stale" for r in results) >= CONCURRENCY - 10
        assert all(r.age_seconds <= 3.0 for r in results)
    await cache.aclose()


async def test_singleflight_costs_one_load_per_process(
    redis_client: Redis, pg_pool: asyncpg.Pool
) -> None:
    # Two cache instances stand for two app processes: coalescing is per process only.
    clock = FakeClock()
    caches = [make_cache("singleflight", redis_client, clock=clock) for _ in range(2)]
    loader = DbLoader(pg_pool)
    await asyncio.gather(*(burst(c, loader, CONCURRENCY // 2) for c in caches))
    assert 1 <= loader.calls <= 2
    clock.advance(1.1)  # expired
    loader.calls = 0
    results = await burst(caches[0], loader)
    assert loader.calls == 1
    assert sum(r.source == "load" for r in results) == 1
    for c in caches:
        await c.aclose()


async def test_swr_serves_stale_and_refreshes_once(
    redis_client: Redis, pg_pool: asyncpg.Pool
) -> None:
    clock = FakeClock()
    cache = make_cache("swr", redis_client, clock=clock, seat_cache_ttl_seconds=0.3)
    assert isinstance(cache, SWRCache)
    loader = DbLoader(pg_pool)
    await expire(cache, loader, clock, 0.3)
    results = await burst(cache, loader)
    # Nobody waited for the database: the stale copy, or the refreshed value for readers whose
    # read came after the background refresh stored it (on a slow machine some do).
    assert all(r.source in ("stale", "hit") for r in results)
    assert results[0].source == "stale" and results[0].stale
    await cache.wait_refreshes()
    assert loader.calls == 1
    after = await cache.get(KEY, loader)
    assert after.source == "hit" and after.created_at > results[0].created_at
    await cache.aclose()


async def test_swr_refreshes_once_across_processes(
    redis_client: Redis, pg_pool: asyncpg.Pool
) -> None:
    clock = FakeClock()
    caches = [
        make_cache("swr", redis_client, clock=clock, seat_cache_ttl_seconds=0.3) for _ in range(3)
    ]
    loader = DbLoader(pg_pool, delay=0.2)
    await expire(caches[0], loader, clock, 0.3)
    await asyncio.gather(*(burst(c, loader, 50) for c in caches))
    for c in caches:
        assert isinstance(c, SWRCache)
        await c.wait_refreshes()
    assert loader.calls == 1  # the Redis SET NX guard let only one process refresh
    for c in caches:
        await c.aclose()


@pytest.mark.parametrize(("strategy", "low", "high"), [("xfetch", 1, 1), ("xfetch-pure", 51, 200)])
async def test_early_recompute_drawn_by_every_reader_at_once(
    redis_client: Redis, pg_pool: asyncpg.Pool, strategy: str, low: int, high: int
) -> None:
    """A draw near 1 (u near 0) makes every reader choose to recompute early: the guard lets one
    background refresh load while every reader is served the still-fresh value; unguarded, every
    reader loads itself."""
    cache = build_seat_cache(
        settings_for(strategy, seat_cache_ttl_seconds=5.0, seat_cache_stale_bound_seconds=6.0),
        redis_client,
        rng=lambda: 0.999_999,
    )
    # delta = 0.5 s, so -delta * ln(1e-6) = 6.9 s reaches past the 5 s expiry: every reader
    # draws "recompute".
    loader = DbLoader(pg_pool, delay=0.5)
    await cache.get(KEY, loader)
    loader.calls = 0
    results = await burst(cache, loader)
    if isinstance(cache, XFetchCache):  # its early recomputation runs in the background
        await cache.wait_refreshes()
        assert all(r.source == "hit" for r in results)  # nobody paid for it
    assert low <= loader.calls <= high
    assert all(r.source in ("hit", "load") for r in results)
    await cache.aclose()
