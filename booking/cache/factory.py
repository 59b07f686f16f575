"""build_seat_cache: pick the strategy named by the settings and wire it to Redis."""

from __future__ import annotations

import random
import time

from redis.asyncio import ConnectionPool, Redis

from booking.cache.base import CacheConfig, CachedValue, Clock, Loader, Random, SeatCache
from booking.cache.local import LOCAL_TTL_SECONDS, LocalTier, make_local_policy
from booking.cache.lock import LockCache
from booking.cache.nocache import NoCache
from booking.cache.prefixed import PrefixedCache
from booking.cache.singleflight import SingleflightCache
from booking.cache.strategy import RedisStrategy
from booking.cache.swr import SWRCache
from booking.cache.ttl import TTLCache
from booking.cache.xfetch import PureXFetchCache, XFetchCache
from booking.redis_clients import is_cluster
from booking.settings import Settings

REDIS_STRATEGIES: dict[str, type[RedisStrategy]] = {
    "ttl": TTLCache,
    "lock": LockCache,
    "singleflight": SingleflightCache,
    "xfetch": XFetchCache,
    "xfetch-pure": PureXFetchCache,
    "swr": SWRCache,
}


class _OwnsClient:
    """Closes the bytes-mode client build_seat_cache had to create."""

    def __init__(self, inner: SeatCache, client: Redis) -> None:
        self.strategy = inner.strategy
        self.inner = inner
        self._client = client

    async def get(self, key: str, loader: Loader) -> CachedValue:
        return await self.inner.get(key, loader)

    async def invalidate(self, key: str) -> None:
        await self.inner.invalidate(key)

    async def aclose(self) -> None:
        await self.inner.aclose()
        await self._client.aclose()


def _bytes_client(redis: Redis) -> Redis | None:
    """A sibling client returning bytes if `redis` decodes responses (envelopes are binary)."""
    if is_cluster(redis):
        if not redis.get_connection_kwargs().get("decode_responses"):  # type: ignore[no-untyped-call]
            return None
        raise ValueError("the seat cache needs a cluster client without decode_responses")
    pool = redis.connection_pool
    if not pool.connection_kwargs.get("decode_responses"):
        return None
    kwargs = {**pool.connection_kwargs, "decode_responses": False}
    return Redis(
        connection_pool=ConnectionPool(
            connection_class=pool.connection_class, max_connections=pool.max_connections, **kwargs
        )
    )


def build_seat_cache(
    settings: Settings,
    redis: Redis,
    *,
    clock: Clock = time.time,
    rng: Random = random.random,
) -> SeatCache:
    """The seat cache for SEAT_CACHE_STRATEGY; `clock`/`rng` are injectable for tests."""
    name = settings.seat_cache_strategy
    config = CacheConfig.from_settings(settings)
    if name == "none":
        return NoCache()
    if name not in REDIS_STRATEGIES:
        known = ", ".join(["none", *REDIS_STRATEGIES])
        raise ValueError(f"SEAT_CACHE_STRATEGY={name!r} is not one of {known}")
    own = _bytes_client(redis)
    cache: SeatCache = REDIS_STRATEGIES[name](own or redis, config, clock=clock, rng=rng)
    if settings.seat_cache_capacity > 0:
        policy = make_local_policy(settings.seat_cache_eviction, settings.seat_cache_capacity)
        local_ttl = min(LOCAL_TTL_SECONDS, config.stale_bound, config.ttl)
        cache = LocalTier(cache, policy, local_ttl=local_ttl, clock=clock)
    if settings.redis_key_prefix:
        cache = PrefixedCache(cache, settings.redis_key_prefix)
    return cache if own is None else _OwnsClient(cache, own)
