"""Optional bounded in-process tier in front of any strategy (SEAT_CACHE_CAPACITY > 0).

Absorbs hot-key reads before they reach Redis. Entries live at most LOCAL_TTL_SECONDS and never
past the value's own logical expiry, so the stale bound still holds; the eviction policy
(the top-level eviction package) decides what to drop when full. Only fresh values are kept locally:
stale serving and refresh decisions stay with the strategy behind it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from booking.cache.base import CachedValue, Clock, Loader, SeatCache, StrategyMetrics, for_strategy
from eviction import EvictionPolicy, make_policy

LOCAL_TTL_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class LocalEntry:
    value: CachedValue
    until: float  # wall clock


def make_local_policy(name: str, capacity: int) -> EvictionPolicy[str, LocalEntry]:
    if name == "opt":
        raise ValueError("SEAT_CACHE_EVICTION=opt is offline only (it needs the future trace)")
    policy: EvictionPolicy[str, LocalEntry] = make_policy(name, capacity)
    return policy


class LocalTier:
    def __init__(
        self,
        inner: SeatCache,
        policy: EvictionPolicy[str, LocalEntry],
        *,
        local_ttl: float = LOCAL_TTL_SECONDS,
        clock: Clock = time.time,
    ) -> None:
        self.strategy = inner.strategy
        self.inner = inner
        self._policy = policy
        self._local_ttl = local_ttl
        self._clock = clock
        self.metrics: StrategyMetrics = for_strategy(inner.strategy)

    async def get(self, key: str, loader: Loader) -> CachedValue:
        now = self._clock()
        entry = self._policy.get(key)
        if entry is not None:
            if now < entry.until:
                self.metrics.hits.inc()
                v = entry.value
                return CachedValue(
                    v.value, False, now - v.created_at, "hit", v.created_at, v.fresh_until
                )
            self._policy.remove(key)
        result = await self.inner.get(key, loader)
        if not result.stale and result.fresh_until > 0:
            until = min(self._clock() + self._local_ttl, result.fresh_until)
            evicted = self._policy.put(key, LocalEntry(result, until))
            if evicted:
                self.metrics.evictions.inc(len(evicted))
        return result

    async def invalidate(self, key: str) -> None:
        # Only this process's copy; other processes' copies age out within LOCAL_TTL_SECONDS.
        self._policy.remove(key)
        await self.inner.invalidate(key)

    async def aclose(self) -> None:
        await self.inner.aclose()
