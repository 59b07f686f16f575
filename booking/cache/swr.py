"""Strategy `swr`: stale-while-revalidate.

An expired or invalidated value that is still within the stale bound is served at once while
exactly one background refresh runs: one task per key in this process, and a short Redis
SET NX guard (the lock key) so only one process refreshes. With nothing servable, readers fall
back to the lock strategy's recompute-or-wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from redis.asyncio import Redis

from booking.cache.base import CachedValue, Loader
from booking.cache.common import Clock, Random
from booking.cache.config import CacheConfig
from booking.cache.mutex import LockingStrategy

log = logging.getLogger(__name__)


class SWRCache(LockingStrategy):
    strategy = "swr"

    def __init__(
        self,
        redis: Redis,
        config: CacheConfig,
        *,
        clock: Clock = time.time,
        rng: Random = random.random,
    ) -> None:
        super().__init__(redis, config, clock=clock, rng=rng)
        self._refreshing: dict[str, asyncio.Task[None]] = {}

    async def get(self, key: str, loader: Loader) -> CachedValue:
        snap = await self._store.read(key)
        now = self._clock()
        env = self._fresh(snap, now)
        if env is not None:
            self.metrics.hits.inc()
            return self._serve(env, "hit")
        self.metrics.misses.inc()
        stale = self._servable(snap, now)
        if stale is not None:
            self._start_refresh(key, loader)
            return self._serve(stale, "stale", now)
        return await self._lock_or_wait(key, loader)

    def _start_refresh(self, key: str, loader: Loader) -> None:
        if key in self._refreshing:
            return
        task = asyncio.create_task(self._refresh(key, loader))
        self._refreshing[key] = task
        task.add_done_callback(lambda t: self._refreshing.pop(key, None))

    async def _refresh(self, key: str, loader: Loader) -> None:
        token = await self._lock.acquire(key)
        if token is None:
            return  # another process is refreshing
        try:
            if self._fresh(await self._store.read(key), self._clock()) is None:
                await self._load(key, loader)
        except Exception:
            # Readers keep getting the stale copy (within the bound) and the next one retries.
            log.exception("background refresh of %s failed", key)
        finally:
            await self._lock.release(key, token)

    async def wait_refreshes(self) -> None:
        """Wait for the background refreshes running now (tests, graceful shutdown)."""
        await asyncio.gather(*self._refreshing.values(), return_exceptions=True)

    async def aclose(self) -> None:
        tasks = list(self._refreshing.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
