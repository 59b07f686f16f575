"""Helpers for the seat-cache tests (the fixtures live in tests/cache_fixtures.py)."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from typing import Any

import asyncpg
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from booking.cache import CacheConfig, SeatCache, build_seat_cache
from booking.settings import Settings, load_settings

# Not TEST_REDIS_URL: tests/conftest.py gives that to the live server (db 15), and these
# fixtures flush their db before every test.
TEST_REDIS_URL = os.environ.get("TEST_CACHE_REDIS_URL", "redis://127.0.0.1:6379/13")
TEST_PG_URL = os.environ.get("TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
KEY = "seatmap:{test}"


class DbLoader:
    """The seat query's stand-in: `delay` seconds of PostgreSQL time, returns the data version.

    The version is read when the query starts, like a statement's snapshot under READ COMMITTED.
    """

    def __init__(self, pool: asyncpg.Pool | None, delay: float = 0.05) -> None:
        self.pool = pool
        self.delay = delay
        self.calls = 0
        self.version = 0
        self.changed_at: list[float] = []  # wall-clock time of each version bump

    def bump(self) -> None:
        """A hold/sale commits: the seats change now."""
        self.version += 1
        self.changed_at.append(time.time())

    async def __call__(self) -> bytes:
        self.calls += 1
        version = self.version
        if self.pool is not None:
            async with self.pool.acquire() as conn:
                await conn.execute("SELECT pg_sleep($1)", self.delay)
        return json.dumps({"version": version, "seats": list(range(50))}).encode()


def version_of(value: bytes) -> int:
    return int(json.loads(value)["version"])


def settings_for(strategy: str, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "seat_cache_strategy": strategy,
        "seat_cache_ttl_seconds": 1.0,
        "seat_cache_stale_bound_seconds": 3.0,
        "seat_cache_lock_ttl_ms": 3000,
    }
    base.update(overrides)
    return load_settings(env={}, **base)


class FakeClock:
    """A wall clock that moves only when the test says so (`advance`): what a cache decides then
    follows the test's steps, not how fast a busy machine runs them. Starts at the real time."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_cache(
    strategy: str,
    redis: Redis,
    *,
    clock: Callable[[], float] = time.time,
    rng: Callable[[], float] = random.random,
    **overrides: Any,
) -> SeatCache:
    return build_seat_cache(settings_for(strategy, **overrides), redis, clock=clock, rng=rng)


def config_for(**overrides: Any) -> CacheConfig:
    return CacheConfig.from_settings(settings_for("ttl", **overrides))


def metric(name: str, strategy: str) -> float:
    return REGISTRY.get_sample_value(name, {"strategy": strategy}) or 0.0
