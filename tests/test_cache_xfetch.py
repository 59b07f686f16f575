"""XFetch: recomputes early with the probability the formula gives, and under steady load the
key never expires."""

from __future__ import annotations

import asyncio
import math
import random

import asyncpg
import pytest
from redis.asyncio import Redis

from booking.cache.base import Envelope
from booking.cache.strategy import RedisStore, RedisStrategy
from booking.cache.xfetch import XFetchCache, should_recompute
from tests.cache_helpers import KEY, DbLoader, FakeClock, config_for, make_cache, metric

pytest_plugins = ["tests.cache_fixtures"]


def expected_rate(gap: float, delta: float, beta: float) -> float:
    # recompute iff -delta*beta*ln(U) >= gap  iff  U <= exp(-gap / (delta*beta)), U ~ U(0, 1]
    return math.exp(-gap / (delta * beta))


def within(observed: int, n: int, p: float, sigmas: float = 4.5) -> bool:
    return abs(observed - n * p) <= sigmas * math.sqrt(n * p * (1 - p)) + 1


@pytest.mark.parametrize(
    ("gap", "delta", "beta"),
    [(0.01, 0.1, 1.0), (0.05, 0.1, 1.0), (0.1, 0.1, 1.0), (0.3, 0.1, 1.0), (0.3, 0.1, 3.0)],
)
async def test_early_recompute_rate_matches_the_formula(
    redis_client: Redis, gap: float, delta: float, beta: float
) -> None:
    config = config_for(seat_cache_xfetch_beta=beta)
    cache = XFetchCache(redis_client, config, rng=random.Random(2015).random)
    env = Envelope(b"", created_at=0.0, delta=delta, fresh_until=100.0)
    n = 20_000
    hits = sum(cache.recompute_early(env, 100.0 - gap) for _ in range(n))
    assert within(hits, n, expected_rate(gap, delta, beta))


def test_formula_edges() -> None:
    assert should_recompute(now=10.0, expiry=10.0, delta=0.1, beta=1.0, u=1.0)  # at expiry
    assert not should_recompute(now=9.0, expiry=10.0, delta=0.0, beta=1.0, u=1e-9)  # free load
    assert should_recompute(now=9.0, expiry=10.0, delta=0.1, beta=1.0, u=math.exp(-10.0))
    assert not should_recompute(now=9.0, expiry=10.0, delta=0.1, beta=1.0, u=math.exp(-9.9))


async def test_early_recompute_rate_through_redis(redis_client: Redis) -> None:
    """The whole read path (envelope in Redis, delta and expiry decoded) with a fixed clock."""
    now = 1_000.0
    cache = XFetchCache(redis_client, config_for(), clock=lambda: now, rng=random.Random(7).random)
    store = RedisStore(redis_client)
    delta, gap, n = 0.2, 0.2, 400
    planted = Envelope(b'{"version": 0}', created_at=now - 0.5, delta=delta, fresh_until=now + gap)
    loader = DbLoader(None)
    for _ in range(n):
        await store.write(KEY, planted, 10.0)  # undo any early recompute: same gap every time
        await cache.get(KEY, loader)
        await cache.wait_refreshes()  # the early recomputation runs behind the reader
    assert within(loader.calls, n, expected_rate(gap, delta, 1.0))


ROUND_SECONDS = 0.01
READERS = 10


async def _steady_readers(
    strategy: str, redis_client: Redis, pg_pool: asyncpg.Pool, seconds: float
) -> tuple[float, float, int]:
    """READERS reads every ROUND_SECONDS of virtual time. The clock moves only between rounds
    and each round's background refreshes finish before it moves, so a busy machine changes
    nothing but delta (the real load time the formula scales by). B is long so Redis (which
    expires keys in real time) never drops a value the virtual clock still serves."""
    ttl = 0.5
    clock = FakeClock()
    cache = make_cache(
        strategy, redis_client, clock=clock, rng=random.Random(2015).random,
        seat_cache_ttl_seconds=ttl, seat_cache_stale_bound_seconds=60.0,
    )  # fmt: skip
    assert isinstance(cache, RedisStrategy)
    loader = DbLoader(pg_pool, delay=0.03)
    await cache.get(KEY, loader)  # warm-up
    misses = metric("seat_cache_misses_total", strategy)
    loads = metric("seat_cache_loads_total", strategy)
    reads = 0
    for _ in range(round(seconds / ROUND_SECONDS)):
        clock.advance(ROUND_SECONDS)
        await asyncio.gather(*(cache.get(KEY, loader) for _ in range(READERS)))
        reads += READERS
        await cache.wait_refreshes()
    await cache.aclose()
    return (
        metric("seat_cache_misses_total", strategy) - misses,
        metric("seat_cache_loads_total", strategy) - loads,
        reads,
    )


async def test_xfetch_key_never_expires_under_steady_load(
    redis_client: Redis, pg_pool: asyncpg.Pool
) -> None:
    misses, loads, reads = await _steady_readers("xfetch", redis_client, pg_pool, 3.0)
    assert reads == 3000
    assert misses == 0
    assert loads >= 5  # ~one early refresh per 0.5 s TTL, before expiry


async def test_plain_ttl_under_the_same_load_does_miss(
    redis_client: Redis, pg_pool: asyncpg.Pool
) -> None:
    """Control for the test above: without early recomputation the key does expire."""
    misses, _, _ = await _steady_readers("ttl", redis_client, pg_pool, 3.0)
    assert misses >= 5
