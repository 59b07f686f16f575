"""What the worker does in Redis after PostgreSQL changed: refresh seat maps, free slots.

Best effort by design: Redis holds nothing that cannot be rebuilt, so a failure here is logged
and never undoes or repeats the database change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import asyncpg
import redis.asyncio as aioredis

from booking.cache import build_seat_cache
from booking.rooms import room_config
from booking.seatmap import invalidate_seat_maps
from booking.settings import Settings
from waitingroom import WaitingRoom

log = logging.getLogger(__name__)


async def after_release(settings: Settings, event_ids: Iterable[int]) -> None:
    client = aioredis.Redis.from_url(settings.redis_url)
    cache = build_seat_cache(settings, client)
    try:
        await invalidate_seat_maps(cache, event_ids)
    except aioredis.RedisError:
        log.exception("seat-map invalidation failed")
    finally:
        await cache.aclose()
        await client.aclose()


async def after_sale(
    settings: Settings, conn: asyncpg.Connection, event_id: int, user_id: int
) -> None:
    """Seats sold: refresh the seat map and free the buyer's waiting-room slot at once.

    Reuses the job's database connection and one Redis client for both steps.
    """
    config = await room_config(conn, event_id)
    client = aioredis.Redis.from_url(settings.redis_url)
    cache = build_seat_cache(settings, client)
    try:
        await invalidate_seat_maps(cache, [event_id])
        if config is not None and config.enabled:
            await WaitingRoom(client, settings.admission_secret).complete(config, str(user_id))
    except aioredis.RedisError:
        log.exception("seat-map invalidation or freeing the waiting-room slot failed")
    finally:
        await cache.aclose()
        await client.aclose()
