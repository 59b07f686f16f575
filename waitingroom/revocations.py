"""Admissions that ended early, pushed to every process (Redis pub/sub), so the verify endpoint
answers "revoked or not" from memory instead of a Redis round trip per token.

Why this is exact: a token is signed only for an active admission and never outlives it
(`exp` <= the admission's expiry). So a genuine, unexpired token stands for an active admission
unless that admission ended EARLY: completed or left (the remove script publishes
`t|<event>|<ticket>`), or the room was reset (`e|<event>|<ms>`: every token of that event issued
before then). A process remembers each for one token lifetime; after that, every token it could
revoke has expired anyway.

Trust: messages published while a process was not subscribed are lost to it. So the feed answers
only after it has been subscribed without a break for one whole token lifetime (tokens revoked
during a gap have all expired by then); until then, and whenever the subscription drops, callers
fall back to reading the active set in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis

log = logging.getLogger(__name__)

# Not a per-event key: pub/sub channels are not stored, and PUBLISH reaches every node.
REVOCATION_CHANNEL = "wr:revocations"
RECONNECT_SECONDS = 1.0


class RevocationFeed:
    def __init__(self, clock: Callable[[], float], ttl_seconds: int) -> None:
        self._clock = clock
        self._ttl = ttl_seconds
        self._tickets: dict[tuple[str, str], float] = {}  # (event, ticket) -> forget after
        self._events: dict[str, float] = {}  # event -> reset instant (epoch s)
        self._since: float | None = None  # subscribed without a break since then
        self._next_prune = 0.0

    def trusted(self) -> bool:
        return self._since is not None and self._clock() >= self._since + self._ttl

    def revoked(self, event_id: str, ticket: str, issued_at: float) -> bool | None:
        """True/False from memory, or None when the feed cannot be trusted (ask Redis)."""
        if not self.trusted():
            return None
        if (event_id, ticket) in self._tickets:
            return True
        reset_at = self._events.get(event_id)
        return reset_at is not None and issued_at <= reset_at

    def apply(self, message: str) -> None:
        kind, _, rest = message.partition("|")
        event_id, _, value = rest.partition("|")
        now = self._clock()
        if kind == "t" and value:
            self._tickets[(event_id, value)] = now + self._ttl + 1
        elif kind == "e" and value.isdigit():
            self._events[event_id] = max(self._events.get(event_id, 0.0), int(value) / 1000)
        if now >= self._next_prune:
            self._prune(now)

    def _prune(self, now: float) -> None:
        self._next_prune = now + 5
        for key in [k for k, until in self._tickets.items() if until < now]:
            del self._tickets[key]
        for event in [e for e, at in self._events.items() if at + self._ttl + 1 < now]:
            del self._events[event]

    def mark_down(self) -> None:
        self._since = None

    def mark_up(self) -> None:
        self._since = self._clock()

    async def run(
        self, redis: Redis, stop: asyncio.Event, channel: str = REVOCATION_CHANNEL
    ) -> None:
        """Stay subscribed until `stop`; any error marks the feed untrusted and resubscribes."""
        while not stop.is_set():
            pubsub = redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                self.mark_up()
                while not stop.is_set():
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        data = message["data"]
                        self.apply(data.decode() if isinstance(data, bytes) else str(data))
            except Exception as exc:
                log.warning("revocation feed lost its subscription: %r", exc)
            finally:
                self.mark_down()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=RECONNECT_SECONDS)
