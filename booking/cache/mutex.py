"""Shared by `lock` and `swr`: one recomputation per key across processes, the others wait.

Waiters poll Redis with capped exponential backoff (plus jitter, so they do not poll in step).
A holder that dies cannot block anyone beyond the lock TTL: the key expires and the next poll
takes the lock.
"""

from __future__ import annotations

import asyncio
import random
import time

from redis.asyncio import Redis

from booking.cache.base import CachedValue, Loader
from booking.cache.common import Clock, Random, RedisStrategy
from booking.cache.config import CacheConfig
from booking.cache.redislock import RedisLock
from booking.cache.store import Snapshot

POLL_FIRST_SECONDS = 0.005
POLL_MAX_SECONDS = 0.05


class LockingStrategy(RedisStrategy):
    serves_stale = True
    retains_past_expiry = True

    def __init__(
        self,
        redis: Redis,
        config: CacheConfig,
        *,
        clock: Clock = time.time,
        rng: Random = random.random,
    ) -> None:
        super().__init__(redis, config, clock=clock, rng=rng)
        self._lock = RedisLock(redis, config.lock_ttl)
        self._jitter = random.Random()  # backoff jitter; separate from the injectable rng

    async def _load_locked(self, key: str, loader: Loader, token: str) -> CachedValue:
        """Recompute while holding the lock; the lock is released even if this task is cancelled."""
        try:
            # Someone may have refreshed between our read and our acquire: don't load twice.
            env = self._fresh(await self._store.read(key), self._clock())
            if env is not None:
                return self._serve(env, "miss")
            return self._serve(await self._load(key, loader), "load")
        finally:
            await self._lock.release(key, token)

    async def _recompute_or_stale(
        self, key: str, loader: Loader, snap: Snapshot, now: float
    ) -> CachedValue:
        """The value is not fresh: the lock winner recomputes; the others take the stale copy
        if one is still servable (age within the stale bound), else wait for the winner's."""
        token = None if snap.locked else await self._lock.acquire(key)
        if token is not None:
            return await self._load_locked(key, loader, token)
        stale = self._servable(snap, now)
        if stale is not None:
            return self._serve(stale, "stale", now)
        return await self._wait_for_fresh(key, loader)

    async def _lock_or_wait(self, key: str, loader: Loader) -> CachedValue:
        token = await self._lock.acquire(key)
        if token is not None:
            return await self._load_locked(key, loader, token)
        return await self._wait_for_fresh(key, loader)

    async def _wait_for_fresh(self, key: str, loader: Loader) -> CachedValue:
        self.metrics.lock_waits.inc()
        # Only a live holder slower than two lock TTLs gets here: stop waiting and load.
        deadline = time.monotonic() + 2 * self._config.lock_ttl
        delay = POLL_FIRST_SECONDS
        lock_key = self._lock.key(key)
        while True:
            await asyncio.sleep(delay * (0.5 + self._jitter.random()))
            delay = min(delay * 2, POLL_MAX_SECONDS)
            snap = await self._store.read(key, lock_key)
            env = self._fresh(snap, self._clock())
            if env is not None:
                return self._serve(env, "miss")
            if not snap.locked:  # holder finished without a fresh value, died, or its lock expired
                token = await self._lock.acquire(key)
                if token is not None:
                    return await self._load_locked(key, loader, token)
            if time.monotonic() > deadline:
                return self._serve(await self._load(key, loader), "load")
