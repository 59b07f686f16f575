"""Per-process cache of each event's sale status and waiting-room config.

Joins, polls, the waiting-room page and holds read it instead of PostgreSQL. An entry lives at
most `ttl_seconds` (the bound on staleness, whatever happens to the messages below); an admin
change drops it at once in the process that made it and, through a Redis pub/sub message, in
every other process (`listen`). One read per event at a time refills an entry (no stampede on
PostgreSQL when it expires under load).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from redis.asyncio import Redis

from booking.domain_errors import EventNotFound
from booking.rooms import sale_state
from booking.statuses import EventStatus
from waitingroom.config import RoomConfig

log = logging.getLogger(__name__)

CHANNEL = "flashsale:event-changed"
_RESUBSCRIBE_SECONDS = 1.0


@dataclass(frozen=True)
class SaleState:
    status: EventStatus
    room: RoomConfig


@dataclass(frozen=True)
class _Entry:
    state: SaleState | None  # None: no such event
    fetched_at: float


class RoomCache:
    def __init__(
        self,
        pool: asyncpg.Pool,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: dict[int, _Entry] = {}
        self._loading: dict[int, asyncio.Task[_Entry]] = {}
        self._generation = 0

    def invalidate(self, event_id: int | None = None) -> None:
        """Drop one event's entry (or all of them, e.g. after missed messages)."""
        self._generation += 1
        if event_id is None:
            self._entries.clear()
            self._loading.clear()
        else:
            self._entries.pop(event_id, None)
            self._loading.pop(event_id, None)

    async def state(self, event_id: int) -> SaleState | None:
        entry = self._entries.get(event_id)
        if entry is not None and self._clock() - entry.fetched_at < self.ttl_seconds:
            return entry.state
        task = self._loading.get(event_id)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self._load(event_id))
            self._loading[event_id] = task
        return (await asyncio.shield(task)).state

    async def _load(self, event_id: int) -> _Entry:
        generation, fetched_at = self._generation, self._clock()
        try:
            status, room = await sale_state(self._pool, event_id)
            entry = _Entry(SaleState(status, room), fetched_at)
        except EventNotFound:
            entry = _Entry(None, fetched_at)
        # A read that raced an invalidation answers its waiters but is not kept.
        if generation == self._generation:
            self._entries[event_id] = entry
        return entry

    async def config(self, event_id: int) -> RoomConfig | None:
        state = await self.state(event_id)
        return None if state is None else state.room

    async def require(self, event_id: int) -> SaleState:
        """The event's state, or EventNotFound."""
        state = await self.state(event_id)
        if state is None:
            raise EventNotFound(event_id)
        return state


async def publish_change(redis: Redis, cache: RoomCache, event_id: int) -> None:
    """After an admin change: drop the entry here at once, tell the other processes."""
    cache.invalidate(event_id)
    try:
        await redis.publish(CHANNEL, str(event_id))
    except Exception:  # the TTL still bounds the other processes' staleness
        log.warning("could not publish the change of event %s", event_id, exc_info=True)


async def listen(redis: Redis, cache: RoomCache, stop: asyncio.Event) -> None:
    """Drop entries named on CHANNEL until `stop`; (re)subscribing drops everything, since
    messages sent while unsubscribed are lost."""
    while not stop.is_set():
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(CHANNEL)
            cache.invalidate()
            while not stop.is_set():
                message = await pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                raw = message.get("data")
                text = raw.decode() if isinstance(raw, bytes) else str(raw)
                cache.invalidate(int(text) if text.isdigit() else None)
        except Exception:
            log.warning("event-change subscription failed; retrying", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=_RESUBSCRIBE_SECONDS)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
