"""Strategy `lock`: a Redis mutex decides who recomputes an expired or invalidated seat map.

The holder loads; the others take the stale copy if one is still servable (age within the
stale bound), else they wait for the holder's value (RedisStrategy._recompute_or_stale).
"""

from __future__ import annotations

from booking.cache.base import CachedValue, Loader
from booking.cache.strategy import RedisStrategy


class LockCache(RedisStrategy):
    strategy = "lock"
    serves_stale = True
    retains_past_expiry = True

    async def get(self, key: str, loader: Loader) -> CachedValue:
        # The lock key rides along in the MGET: no pointless SET NX while someone holds it.
        snap = await self._store.read(key, self._lock.key(key))
        now = self._clock()
        env = self._fresh(snap, now)
        if env is not None:
            self.metrics.hits.inc()
            return self._serve(env, "hit")
        self.metrics.misses.inc()
        return await self._recompute_or_stale(key, loader, snap, now)
