"""The seat map behind the seat cache: loading (404 for an unknown event) and invalidation;
the key is booking.cache.seat_map_key.

When Redis is unreachable the seat map is read from PostgreSQL directly (X-Cache: load):
PostgreSQL holds the truth, so an outage of the cache costs load, not availability.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from redis.exceptions import RedisError

from booking.cache import CachedValue, SeatCache, seat_map_key
from booking.coalesce import PerOwner
from booking.domain_errors import EventNotFound
from booking.events import load_seat_map

log = logging.getLogger(__name__)


async def read_seat_map(
    cache: SeatCache, pool: asyncpg.Pool, event_id: int, delay_ms: int
) -> CachedValue:
    async def loader() -> bytes:
        if not await pool.fetchval("SELECT 1 FROM events WHERE id = $1", event_id):
            raise EventNotFound(event_id)
        return await load_seat_map(pool, event_id, delay_ms)

    try:
        return await cache.get(seat_map_key(event_id), loader)
    except RedisError as exc:
        log.warning("seat cache unavailable, reading event %s from PostgreSQL: %r", event_id, exc)
        started = time.time()
        value = await loader()
        return CachedValue(value, stale=False, age_seconds=0.0, source="load", created_at=started)


def _invalidate_batch(cache: SeatCache) -> Callable[[int, list[None]], Awaitable[object]]:
    async def flush(event_id: int, _: list[None]) -> None:
        await cache.invalidate(seat_map_key(event_id))

    return flush


# Concurrent invalidations of one event in this process share one (booking/coalesce.py): a burst
# of holds costs about one per Redis round trip, each still followed by one started after it.
_invalidations: PerOwner[SeatCache, int, None] = PerOwner(_invalidate_batch)


def schedule_seat_map_invalidation(cache: SeatCache, event_id: int) -> None:
    """Invalidate the event's seat map in the next flush for it, without waiting: a hold's 201
    does not wait for Redis. The flush starts after this call (so after the caller's commit), a
    burst of holds shares it, and a failure is logged (the cache's staleness bound repairs it)."""
    _invalidations(cache).post(int(event_id), None)


async def invalidate_seat_maps(cache: SeatCache, event_ids: Any) -> None:
    coalescer = _invalidations(cache)
    for event_id in set(event_ids):
        await coalescer.submit(int(event_id), None)
