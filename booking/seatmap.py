"""The seat map behind the seat cache: loading (404 for an unknown event) and invalidation;
the key is booking.cache.seat_map_key.

When Redis is unreachable the seat map is read from PostgreSQL directly (X-Cache: load):
PostgreSQL holds the truth, so an outage of the cache costs load, not availability.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import asyncpg
from redis.exceptions import RedisError

from booking.cache import CachedValue, SeatCache, seat_map_key
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


async def invalidate_seat_maps(cache: SeatCache, event_ids: Any) -> None:
    for event_id in set(event_ids):
        await cache.invalidate(seat_map_key(int(event_id)))
