"""Strategy `singleflight`: ttl, plus concurrent misses in one process share one in-flight load.

Across N processes a cold key costs at most N loads.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time

from redis.asyncio import Redis

from booking.cache.base import CachedValue, Loader, Source
from booking.cache.common import Clock, Random
from booking.cache.config import CacheConfig
from booking.cache.envelope import Envelope
from booking.cache.ttl import TTLCache


class SingleflightCache(TTLCache):
    strategy = "singleflight"

    def __init__(
        self,
        redis: Redis,
        config: CacheConfig,
        *,
        clock: Clock = time.time,
        rng: Random = random.random,
    ) -> None:
        super().__init__(redis, config, clock=clock, rng=rng)
        self._inflight: dict[str, asyncio.Task[Envelope]] = {}

    async def _on_miss(self, key: str, loader: Loader) -> CachedValue:
        task = self._inflight.get(key)
        source: Source = "miss"
        if task is None:
            # A task, not a bare coroutine: the shared load survives the leader's request being
            # cancelled (client gone) while followers still wait for it.
            task = asyncio.create_task(self._load(key, loader))
            self._inflight[key] = task
            task.add_done_callback(lambda t: self._finished(key, t))
            source = "load"
        else:
            self.metrics.lock_waits.inc()
        return self._serve(await asyncio.shield(task), source)

    def _finished(self, key: str, task: asyncio.Task[Envelope]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning when every waiter left

    async def invalidate(self, key: str) -> None:
        # Later readers must not join a load that may have read the seats before the change.
        self._inflight.pop(key, None)
        await super().invalidate(key)

    async def aclose(self) -> None:
        tasks = list(self._inflight.values())
        self._inflight.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
