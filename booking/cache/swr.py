"""Strategy `swr`: stale-while-revalidate.

An expired or invalidated value that is still within the stale bound is served at once while
exactly one background refresh runs (RedisStrategy._start_refresh). With nothing servable, readers
fall back to the lock strategy's recompute-or-wait.
"""

from __future__ import annotations

from booking.cache.base import CachedValue, Loader
from booking.cache.strategy import RedisStrategy


class SWRCache(RedisStrategy):
    strategy = "swr"
    serves_stale = True
    retains_past_expiry = True

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
            self._start_refresh(key, loader, stale.created_at)
            return self._serve(stale, "stale", now)
        return await self._lock_or_wait(key, loader)
