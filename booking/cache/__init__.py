"""The seat-map cache: one interface, a strategy chosen per run (SEAT_CACHE_STRATEGY).

    cache = build_seat_cache(settings, redis)
    result = await cache.get(seat_map_key(event_id), loader)   # CachedValue
    await cache.invalidate(seat_map_key(event_id))              # after a hold/sale/cancel/expiry
    await cache.aclose()                                        # on shutdown

The staleness contract is in booking/cache/base.py; each strategy is one file (ttl, lock,
singleflight, xfetch, swr, nocache) over the shared Redis machinery in booking/cache/strategy.py.
"""

from booking.cache.base import (
    STRATEGIES,
    CacheConfig,
    CachedValue,
    Loader,
    SeatCache,
    Source,
    seat_map_key,
)
from booking.cache.factory import build_seat_cache

__all__ = [
    "STRATEGIES",
    "CacheConfig",
    "CachedValue",
    "Loader",
    "SeatCache",
    "Source",
    "build_seat_cache",
    "seat_map_key",
]
