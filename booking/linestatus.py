"""What the waiting page needs besides a buyer's own place: the event, how full the sale's
active set is, how many wait, and whether seats remain.

Every waiting buyer's page asks for this, so each process computes it at most once per
second per event (one event read with seat counts, one Redis pipeline) and shares the answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import asyncpg
from redis.asyncio import Redis

from booking.events import get_event
from booking.statuses import EventStatus, LineState, SeatStatus
from waitingroom.keys import RoomKeys

CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class LineStatus:
    event: dict[str, Any]
    active: int  # buyers admitted and still choosing seats
    waiting: int  # in the queue or the pre-queue
    computed_at: float  # epoch seconds

    @property
    def max_active(self) -> int:
        return int(self.event["waiting_room"]["max_active"])

    @property
    def full(self) -> bool:
        """The line cannot move: every admission slot is taken by someone choosing seats."""
        return self.active >= self.max_active

    @property
    def sold_out(self) -> bool:
        seats = self.event["seats"]
        return (
            bool(seats["total"])
            and seats[SeatStatus.AVAILABLE] == 0
            and seats[SeatStatus.HELD] == 0
        )

    @property
    def state(self) -> LineState:
        """The page's headline state."""
        if self.event["status"] == EventStatus.CLOSED:
            return LineState.CLOSED
        if self.sold_out:
            return LineState.SOLD_OUT
        if not self.event["waiting_room"]["enabled"]:
            return LineState.NO_LINE  # nothing to wait for: buyers go straight to the seats
        return LineState(self.event["status"])

    def as_json(self) -> dict[str, Any]:
        ev = self.event
        return {
            "event": {
                "id": ev["id"],
                "name": ev["name"],
                "venue": ev["venue"],
                "starts_at": ev["starts_at"],
                "status": ev["status"],
                "sale_opens_at": ev["sale_opens_at"],
            },
            "state": self.state,
            "line": {
                "active": self.active,
                "max_active": self.max_active,
                "waiting": self.waiting,
                "full": self.full,
                "admit_per_second": ev["waiting_room"]["admit_per_second"],
                "admission_window_seconds": ev["waiting_room"]["admission_window_seconds"],
            },
            "seats": ev["seats"],
            "updated_at": self.computed_at,
        }


class LineStatusCache:
    def __init__(self, pool: asyncpg.Pool, redis: Redis, key_prefix: str = "") -> None:
        self._pool = pool
        self._redis = redis
        self._key_prefix = key_prefix  # REDIS_KEY_PREFIX
        self._cache: dict[int, LineStatus] = {}

    async def get(self, event_id: int) -> LineStatus:
        """Raises EventNotFound for an unknown event (from get_event)."""
        now = time.time()
        cached = self._cache.get(event_id)
        if cached is not None and now - cached.computed_at < CACHE_SECONDS:
            return cached
        event = await get_event(self._pool, event_id)
        keys = RoomKeys(str(event_id), self._key_prefix)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zcount(keys.active, f"({int(now * 1000)}", "+inf")
            pipe.zcard(keys.queue)
            pipe.zcard(keys.pre)
            active, queued, pre = await pipe.execute()
        status = LineStatus(event, int(active), int(queued) + int(pre), now)
        if len(self._cache) > 1000:  # events come and go; never grow without bound
            self._cache.clear()
        self._cache[event_id] = status
        return status
