"""Seat cache building blocks: envelope format, freshness rules, factory, Redis lock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from booking.cache import STRATEGIES, CacheConfig, build_seat_cache, seat_map_key
from booking.cache.base import Envelope, decode, encode
from booking.cache.strategy import RedisLock
from tests.cache_helpers import KEY, TEST_REDIS_URL, DbLoader, config_for, settings_for

pytest_plugins = ["tests.cache_fixtures"]

finite = st.floats(allow_nan=False, allow_infinity=False)


@given(value=st.binary(), created=finite, delta=finite, until=finite)
def test_envelope_round_trips(value: bytes, created: float, delta: float, until: float) -> None:
    assert decode(encode(Envelope(value, created, delta, until))) == Envelope(
        value, created, delta, until
    )


@pytest.mark.parametrize("blob", [b"", b"[]", b'{"seats": []}' * 3, b"XXXX" + bytes(24)])
def test_decode_rejects_foreign_values(blob: bytes) -> None:
    assert decode(blob) is None


def test_fresh_until_never_exceeds_ttl_or_stale_bound() -> None:
    cfg = config_for(seat_cache_ttl_seconds=2.0, seat_cache_stale_bound_seconds=3.0)
    assert cfg.fresh_until(100.0, 100.5, 0.0) == 102.5
    capped = config_for(seat_cache_ttl_seconds=5.0, seat_cache_stale_bound_seconds=3.0)
    assert capped.fresh_until(100.0, 100.5, 0.0) == 103.0  # created + bound, not stored + ttl
    jittered = config_for(seat_cache_ttl_seconds=2.0, seat_cache_ttl_jitter=0.5)
    spread = {jittered.fresh_until(100.0, 100.0, u / 10) for u in range(10)}
    assert len(spread) == 10 and min(spread) > 101.0 - 1e-9 and max(spread) <= 102.0


def test_freshness_respects_watermark_and_bound() -> None:
    cfg = config_for(seat_cache_ttl_seconds=1.0, seat_cache_stale_bound_seconds=3.0)
    env = Envelope(b"x", created_at=100.0, delta=0.1, fresh_until=101.0)
    assert cfg.is_fresh(env, 100.5, invalidated_at=0.0)
    assert not cfg.is_fresh(env, 101.0, invalidated_at=0.0)
    assert not cfg.is_fresh(env, 100.5, invalidated_at=100.0)  # load began before the write
    assert cfg.is_servable(env, 103.0) and not cfg.is_servable(env, 103.01)


@pytest.mark.parametrize(
    "bad",
    [
        {"seat_cache_ttl_seconds": 0.0},
        {"seat_cache_stale_bound_seconds": -1.0},
        {"seat_cache_ttl_jitter": 1.0},
        {"seat_cache_xfetch_beta": 0.0},
    ],
)
def test_config_rejects_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CacheConfig.from_settings(settings_for("ttl", **bad))


async def test_factory_builds_every_strategy(redis_client: Redis) -> None:
    loader = DbLoader(None)
    for name in STRATEGIES:
        cache = build_seat_cache(settings_for(name), redis_client)
        assert cache.strategy == name
        got = await cache.get(seat_map_key(name), loader)
        assert got.source == "load" and not got.stale
        await cache.aclose()
    with pytest.raises(ValueError, match="SEAT_CACHE_STRATEGY"):
        build_seat_cache(settings_for("lru"), redis_client)


async def test_factory_copes_with_a_decoding_client(redis_client: Redis) -> None:
    decoding = Redis.from_url(TEST_REDIS_URL, decode_responses=True)
    await decoding.flushdb()  # its own single Redis db, whichever backend the fixture is
    cache = build_seat_cache(settings_for("ttl"), decoding)
    loader = DbLoader(None)
    first = await cache.get(KEY, loader)
    second = await cache.get(KEY, loader)
    assert (first.source, second.source) == ("load", "hit")
    assert second.value == first.value and loader.calls == 1
    await cache.aclose()
    await decoding.aclose()


async def test_lock_is_released_only_by_its_owner(redis_client: Redis) -> None:
    lock = RedisLock(redis_client, ttl_seconds=30.0)  # never runs out by itself in this test
    first = await lock.acquire(KEY)
    assert first is not None
    assert await lock.acquire(KEY) is None
    # The first holder's TTL runs out (it "died" or ran too long): Redis drops the key.
    assert await redis_client.ttl(lock.key(KEY)) > 0
    await redis_client.delete(lock.key(KEY))
    second = await lock.acquire(KEY)
    assert second is not None
    assert not await lock.release(KEY, first)  # the late first holder must not free the second's
    assert await redis_client.get(lock.key(KEY)) == second.encode()
    assert await lock.release(KEY, second)
    assert await redis_client.exists(lock.key(KEY)) == 0
