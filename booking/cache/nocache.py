"""Strategy `none`: every read runs the database query (the baseline)."""

from __future__ import annotations

import time

from booking.cache.base import CachedValue, Loader, StrategyMetrics, for_strategy


class NoCache:
    strategy: str = "none"

    def __init__(self) -> None:
        self.metrics: StrategyMetrics = for_strategy(self.strategy)

    async def get(self, key: str, loader: Loader) -> CachedValue:
        self.metrics.misses.inc()
        self.metrics.loads.inc()
        created_at = time.time()
        started = time.perf_counter()
        value = await loader()
        self.metrics.load_seconds.observe(time.perf_counter() - started)
        return CachedValue(value, False, time.time() - created_at, "load", created_at)

    async def invalidate(self, key: str) -> None:
        return None

    async def aclose(self) -> None:
        return None
