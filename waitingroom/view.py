"""QueueView: answers most polls from process memory, without Redis.

Queue scores are contiguous (scripts.py), so the place of a waiting buyer with score `s` is
`s - head + 1 - |holes in [head, s]|` (minus the holes of a pre-queue still being moved). A
web process keeps, per event, a snapshot of `head`, `tail`, the holes and the rate (one small
script, refreshed when older than `refresh_seconds`, by one request while the others go on
with the previous one), and per ticket the `(user, score)` it learned from the first exact
poll. A poll of a known ticket whose score lies in `[head, tail]` is then answered from the
snapshot: the position is exact as of the snapshot's time, never older than `max_age_seconds`
(past that, the poll waits for a fresh snapshot). Everything else - unknown tickets,
pre-queue, admitted or expired buyers, tickets newer than the snapshot - takes the exact path
(`WaitingRoom.poll_with_score`, one script). Changes made by this process (its admitter, a
leave) drop the snapshot at once, so a single process is exact.

The poll rate limit on the memory path is counted per process (a fixed one-second window per
ticket); the exact path keeps its Redis counter.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter

from waitingroom import metrics
from waitingroom import queue as q
from waitingroom.config import RoomConfig
from waitingroom.errors import PollRateLimited, UnknownTicket
from waitingroom.eta import eta_seconds, parse_rate
from waitingroom.models import PollResult, Ticket
from waitingroom.room import WaitingRoom
from waitingroom.throttle import JoinGuard

REFRESH_SECONDS = 0.25
MAX_AGE_SECONDS = 1.0
MAX_TICKETS = 1_000_000  # per process: about 150 MB at the limit; oldest are forgotten first


@dataclass(frozen=True)
class Snapshot:
    taken_at: float  # monotonic seconds
    epoch: str
    head: int
    tail: int
    gone_version: str
    gone: list[int]  # sorted scores of buyers who left, >= some earlier head
    open_end: int
    open_gap: int
    rate: str

    def position(self, score: int) -> int | None:
        """Place of `score` as of this snapshot, or None if it left or is not in range."""
        if not self.head <= score <= self.tail:
            return None
        lo = bisect.bisect_left(self.gone, self.head)
        hi = bisect.bisect_right(self.gone, score)
        if hi > 0 and self.gone[hi - 1] == score:
            return None
        place = score - self.head + 1 - (hi - lo)
        if self.open_end >= 0 and score > self.open_end:
            place -= self.open_gap
        return place

    def left(self, score: int) -> bool:
        i = bisect.bisect_left(self.gone, score)
        return i < len(self.gone) and self.gone[i] == score


@dataclass(frozen=True)
class _Known:
    event_id: str
    user_id: str
    score: int
    epoch: str


class QueueView:
    def __init__(
        self,
        room: WaitingRoom,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        max_age_seconds: float = MAX_AGE_SECONDS,
        max_tickets: int = MAX_TICKETS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= refresh_seconds <= max_age_seconds:
            raise ValueError("need 0 <= refresh_seconds <= max_age_seconds")
        self.room = room
        self.refresh_seconds = refresh_seconds
        self.max_age_seconds = max_age_seconds
        self._max_tickets = max_tickets
        self._monotonic = monotonic
        self._snapshots: dict[str, Snapshot] = {}
        self._refreshing: dict[str, asyncio.Task[Snapshot]] = {}
        self._generation: dict[str, int] = {}
        self._known: OrderedDict[str, _Known] = OrderedDict()
        self._window = -1
        self._hits: dict[str, int] = {}
        self._counters: dict[str, tuple[Counter, Counter]] = {}
        room.add_listener(self.invalidate)

    @property
    def poll_limit_per_second(self) -> int:
        return self.room.poll_limit_per_second

    def invalidate(self, event_id: str) -> None:
        """Forget the event's snapshot: the next poll of it waits for a fresh one."""
        self._snapshots.pop(event_id, None)
        self._refreshing.pop(event_id, None)  # a refresh already under way may predate it
        self._generation[event_id] = self._generation.get(event_id, 0) + 1

    def remember(self, event_id: str, ticket: Ticket | str, user_id: str, score: int) -> None:
        """Cache a ticket's score (from a join or an exact poll) for memory-path polls."""
        if score <= 0:
            return
        snap = self._snapshots.get(event_id)
        if snap is None:
            return  # the epoch is not known yet: the ticket's first poll takes the exact path
        key = ticket.ticket if isinstance(ticket, Ticket) else ticket
        self._known[key] = _Known(event_id, user_id, score, snap.epoch)
        if len(self._known) > self._max_tickets:
            self._known.popitem(last=False)

    async def join(
        self, config: RoomConfig, user_id: str | int, guard: JoinGuard | None = None
    ) -> Ticket:
        ticket = await self.room.join(config, user_id, guard)
        self.remember(config.event_id, ticket, str(user_id), ticket.score)
        return ticket

    async def poll(self, config: RoomConfig, ticket: str) -> PollResult:
        event = config.event_id
        known = self._known.get(ticket)
        if known is not None and known.event_id == event:
            snap = await self.snapshot(event)
            if snap.epoch == known.epoch:
                if snap.left(known.score):
                    self._known.pop(ticket, None)
                    raise UnknownTicket(ticket)
                place = snap.position(known.score)
                if place is not None:
                    self._limit(event, ticket)
                    self._count(event)
                    rate = parse_rate(snap.rate or None, config.admit_per_second)
                    return PollResult(
                        "waiting", place, eta_seconds(place, rate), user_id=known.user_id
                    )
            else:
                self._known.pop(ticket, None)
        result, score = await self.room.poll_with_score(config, ticket)
        if score > 0 and result.user_id is not None:
            if event not in self._snapshots:
                with contextlib.suppress(Exception):
                    await self.snapshot(event)
            self.remember(event, ticket, result.user_id, score)
        return result

    def _count(self, event: str) -> None:
        counters = self._counters.get(event)
        if counters is None:
            # labels() costs a lock and a lookup per call: keep the children per event.
            counters = (metrics.POLLS.labels(event), metrics.POLLS_FROM_MEMORY.labels(event))
            self._counters[event] = counters
        for counter in counters:
            counter.inc()

    def _limit(self, event: str, ticket: str) -> None:
        window = int(self._monotonic())
        if window != self._window:
            self._window, self._hits = window, {}
        hits = self._hits.get(ticket, 0) + 1
        self._hits[ticket] = hits
        if hits > self.room.poll_limit_per_second:
            metrics.POLLS_LIMITED.labels(event).inc()
            retry_ms = max(1, int((window + 1 - self._monotonic()) * 1000))
            raise PollRateLimited(retry_ms)

    async def snapshot(self, event_id: str) -> Snapshot:
        """The event's snapshot: fresh enough as is, refreshed in the background when older
        than `refresh_seconds`, awaited when missing or older than `max_age_seconds`."""
        snap = self._snapshots.get(event_id)
        age = None if snap is None else self._monotonic() - snap.taken_at
        if snap is not None and age is not None and age < self.refresh_seconds:
            return snap
        task = self._refreshing.get(event_id)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self._refresh(event_id, snap))
            self._refreshing[event_id] = task
        if snap is not None and age is not None and age < self.max_age_seconds:
            return snap
        return await asyncio.shield(task)

    async def _refresh(self, event_id: str, previous: Snapshot | None) -> Snapshot:
        started = self._monotonic()
        generation = self._generation.get(event_id, 0)
        known_version = previous.gone_version if previous is not None else ""
        raw = await q.snapshot(
            self.room._scripts, self.room.keys_for(event_id), known_version or "-"
        )
        gone = raw.gone
        if gone is None:
            assert previous is not None
            cut = bisect.bisect_left(previous.gone, raw.head)
            gone = previous.gone[cut:]
        snap = Snapshot(
            taken_at=started,
            epoch=raw.epoch,
            head=raw.head,
            tail=raw.tail,
            gone_version=raw.gone_version,
            gone=sorted(gone),
            open_end=raw.open_end,
            open_gap=raw.open_gap,
            rate=raw.rate,
        )
        # A snapshot read before an invalidation is still returned to the polls that waited for
        # it (they asked before the change), but never kept for later ones.
        if self._generation.get(event_id, 0) == generation:
            self._snapshots[event_id] = snap
        return snap
