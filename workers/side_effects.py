"""What the worker does in Redis after PostgreSQL changed: refresh seat maps, free slots.

Best effort by design: Redis holds nothing that cannot be rebuilt, so a failure here is logged
and never undoes or repeats the database change. Uses the runtime's shared Redis client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from booking.seatmap import invalidate_seat_maps

if TYPE_CHECKING:
    from workers.runtime import Runtime

log = logging.getLogger(__name__)


async def after_release(rt: Runtime, event_ids: Iterable[int]) -> None:
    try:
        await invalidate_seat_maps(rt.seat_cache, event_ids)
    except aioredis.RedisError:
        log.exception("seat-map invalidation failed")


async def after_sale(rt: Runtime, event_id: int, user_id: int, waiting_room: bool) -> None:
    """Seats sold: refresh the seat map and free the buyer's waiting-room slot at once."""
    try:
        await invalidate_seat_maps(rt.seat_cache, [event_id])
        if waiting_room:
            await rt.waiting_room.complete(event_id, str(user_id))
    except aioredis.RedisError:
        log.exception("seat-map invalidation or freeing the waiting-room slot failed")
