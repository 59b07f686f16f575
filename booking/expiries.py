"""Hold expiries scheduled in one Redis sorted set per deployment: reservation id -> expires_at.

The hold path adds its entry after commit - concurrent holds of one process share one ZADD
(booking/coalesce.py) - a cancel removes it with one ZREM; the
workers pop the due entries every EXPIRY_SWEEP_INTERVAL_SECONDS (their own RQ queue). This is
only a schedule: PostgreSQL's `expires_at` stays the truth, an entry popped early or twice does
nothing, and the periodic full sweep (`expire_overdue`) releases anything whose entry Redis lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from redis.asyncio import Redis

from booking.coalesce import PerOwner

# Pops at most ARGV[2] entries due at ARGV[1] (epoch seconds) in one atomic step.
_POP_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
return ids
"""


def expiry_key(queue: str) -> str:
    # Per RQ queue: deployments sharing one Redis db keep their own schedules (as the sweep guard).
    return f"hold-expiries:{queue}"


def _zadd_batch(redis: Redis) -> Callable[[str, list[tuple[int, datetime]]], Awaitable[object]]:
    async def flush(key: str, entries: list[tuple[int, datetime]]) -> None:
        await redis.zadd(key, {str(rid): at.timestamp() for rid, at in entries})

    return flush


_zadds: PerOwner[Redis, str, tuple[int, datetime]] = PerOwner(_zadd_batch)


async def schedule_expiry(redis: Redis, key: str, reservation_id: int, at: datetime) -> None:
    """Add the entry; returns once a ZADD carrying it (and any others of this process waiting
    meanwhile) has succeeded."""
    await _zadds(redis).submit(key, (reservation_id, at))


async def unschedule_expiry(redis: Redis, key: str, reservation_id: int) -> None:
    await redis.zrem(key, str(reservation_id))


async def pop_due(redis: Redis, key: str, now: float, limit: int = 500) -> list[int]:
    """Remove and return up to `limit` reservation ids whose expiry is at or before `now`."""
    ids = await redis.eval(_POP_DUE, 1, key, repr(now), str(limit))  # type: ignore[misc]
    return [int(i) for i in ids]


async def reschedule(redis: Redis, key: str, expiries: dict[int, datetime]) -> None:
    """Put back holds popped before their (extended) expiry."""
    if expiries:
        await redis.zadd(key, {str(r): at.timestamp() for r, at in expiries.items()})
