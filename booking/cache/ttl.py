"""Strategy `ttl`: plain cache-aside. A miss loads and SETs with PX (optionally jittered).

Under concurrency every request that misses loads: the stampede the other strategies prevent.
"""

from __future__ import annotations

from booking.cache.base import CachedValue, Loader
from booking.cache.common import RedisStrategy


class TTLCache(RedisStrategy):
    strategy = "ttl"

    async def get(self, key: str, loader: Loader) -> CachedValue:
        snap = await self._store.read(key)
        env = self._fresh(snap, self._clock())
        if env is not None:
            self.metrics.hits.inc()
            return self._serve(env, "hit")
        self.metrics.misses.inc()
        return await self._on_miss(key, loader)

    async def _on_miss(self, key: str, loader: Loader) -> CachedValue:
        return self._serve(await self._load(key, loader), "load")
