"""What every Redis-backed strategy shares: timed loads, serving, invalidation."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import ClassVar

from redis.asyncio import Redis

from booking.cache.base import CachedValue, Loader, Source
from booking.cache.config import RETAIN_MARGIN_SECONDS, CacheConfig
from booking.cache.envelope import Envelope
from booking.cache.metrics import StrategyMetrics, for_strategy
from booking.cache.store import RedisStore, Snapshot

Clock = Callable[[], float]
Random = Callable[[], float]  # uniform in [0, 1), like random.random


class RedisStrategy:
    strategy: str = ""
    # Invalidation keeps the value as a stale-but-servable copy (lock, swr) instead of deleting it.
    serves_stale: ClassVar[bool] = False
    # Redis keeps values until they can no longer be served (age B), not just until logical expiry.
    retains_past_expiry: ClassVar[bool] = False

    def __init__(
        self,
        redis: Redis,
        config: CacheConfig,
        *,
        clock: Clock = time.time,
        rng: Random = random.random,
    ) -> None:
        self._redis = redis
        self._store = RedisStore(redis)
        self._config = config
        self._clock = clock
        self._rng = rng
        self.metrics: StrategyMetrics = for_strategy(self.strategy)

    async def get(self, key: str, loader: Loader) -> CachedValue:
        raise NotImplementedError

    async def invalidate(self, key: str) -> None:
        if not self._config.invalidate_on_write:
            return
        await self._store.invalidate(
            key, self._clock(), self._config.retain_seconds(), delete=not self.serves_stale
        )

    async def aclose(self) -> None:
        return None

    def _fresh(self, snap: Snapshot, now: float) -> Envelope | None:
        env = snap.envelope
        if env is not None and self._config.is_fresh(env, now, snap.invalidated_at):
            return env
        return None

    def _servable(self, snap: Snapshot, now: float) -> Envelope | None:
        env = snap.envelope
        if env is not None and self._config.is_servable(env, now):
            return env
        return None

    def _serve(self, env: Envelope, source: Source, now: float | None = None) -> CachedValue:
        """`now`: the time the value was judged servable, so the reported age is the judged one."""
        now = self._clock() if now is None else now
        age = env.age(now)
        if source == "stale":
            self.metrics.stale_served.inc()
            self.metrics.stale_age_seconds.observe(age)
        return CachedValue(
            env.value, source == "stale", age, source, env.created_at, env.fresh_until
        )

    async def _load(self, key: str, loader: Loader) -> Envelope:
        """Run the loader (one database recomputation), store and return the new envelope."""
        created_at = self._clock()  # before the query: the data is at least this recent
        started = time.perf_counter()
        self.metrics.loads.inc()
        value = await loader()
        delta = time.perf_counter() - started
        self.metrics.load_seconds.observe(delta)
        stored_at = self._clock()
        env = Envelope(
            value, created_at, delta, self._config.fresh_until(created_at, stored_at, self._rng())
        )
        if self.retains_past_expiry:
            keep = created_at + self._config.stale_bound + RETAIN_MARGIN_SECONDS - stored_at
        else:
            keep = env.fresh_until - stored_at
        if keep > 0:  # a load slower than the bound is handed back but not cached
            await self._store.write(key, env, keep)
        return env
