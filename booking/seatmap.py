"""The seat map behind the seat cache: key naming, loading and invalidation."""

from __future__ import annotations

from typing import Any

import asyncpg

from booking.cache import CachedValue, SeatCache, seat_map_key
from booking.errors import Problem
from booking.events import load_seat_map


async def read_seat_map(
    cache: SeatCache, pool: asyncpg.Pool, event_id: int, delay_ms: int
) -> CachedValue:
    async def loader() -> bytes:
        if not await pool.fetchval("SELECT 1 FROM events WHERE id = $1", event_id):
            raise Problem(404, "not-found", f"no such event: {event_id}")
        return await load_seat_map(pool, event_id, delay_ms)

    return await cache.get(seat_map_key(event_id), loader)


async def invalidate_seat_maps(cache: SeatCache, event_ids: Any) -> None:
    for event_id in set(event_ids):
        await cache.invalidate(seat_map_key(int(event_id)))
