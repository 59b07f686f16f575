"""Strategy `singleflight`: ttl, plus concurrent misses in one process share one in-flight load.

Across N processes a cold key costs at most N loads. An invalidation drops the in-flight entry
(RedisStrategy.invalidate), so later readers do not join a load that may predate the change.
"""

from __future__ import annotations

import asyncio

from booking.cache.base import CachedValue, Envelope, Loader, Source
from booking.cache.strategy import RedisStrategy


class SingleflightCache(RedisStrategy):
    strategy = "singleflight"

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
