"""WaitingRoom: the facade the routes and the booking app use."""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable

from redis.asyncio import Redis

from waitingroom import admission, metrics
from waitingroom import queue as q
from waitingroom.config import RoomConfig
from waitingroom.errors import PollRateLimited, RoomClosed, TokenRejected, UnknownTicket
from waitingroom.eta import EWMA_ALPHA, eta_seconds, parse_rate, pre_queue_eta_seconds
from waitingroom.keys import RoomKeys, is_safe_id
from waitingroom.models import PollResult, Ticket
from waitingroom.scripts import Scripts
from waitingroom.tokens import TokenSigner

EventRef = RoomConfig | str | int


def _event_id(event: EventRef) -> str:
    return event.event_id if isinstance(event, RoomConfig) else str(event)


class WaitingRoom:
    def __init__(
        self,
        redis: Redis,
        secret: str,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        poll_limit_per_second: int = 2,
        ewma_alpha: float = EWMA_ALPHA,
        batch: bool = True,
    ) -> None:
        """`clock` returns epoch seconds; `rng` seeds the pre-queue shuffle (tests fix it);
        `batch` pipelines concurrent script calls (see batching.py)."""
        self.redis = redis
        self.clock = clock
        self.poll_limit_per_second = poll_limit_per_second
        self._rng = rng or random.SystemRandom()
        self._alpha = ewma_alpha
        self._scripts = Scripts.register(redis, batch=batch)
        self._signer = TokenSigner(secret, clock)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _seed(self) -> int:
        return self._rng.getrandbits(31)

    async def join(self, config: RoomConfig, user_id: str | int) -> Ticket:
        """Idempotent: a user already waiting or admitted gets the same ticket and place."""
        if not config.enabled:
            raise RoomClosed(f"waiting room of event {config.event_id} is not enabled")
        keys = RoomKeys(config.event_id)
        now_ms = self._now_ms()
        raw = await q.join(
            self._scripts,
            keys,
            user_id=str(user_id),
            new_ticket=secrets.token_urlsafe(16),
            now_ms=now_ms,
            opens_at_ms=config.opens_at_ms(),
            seed=self._seed(),
            admit_per_second=config.admit_per_second,
        )
        metrics.JOINS.labels(config.event_id).inc()
        rate = parse_rate(raw.rate, config.admit_per_second)
        eta: int | None = None
        if raw.status == "pre":
            eta = pre_queue_eta_seconds(
                now_ms / 1000, config.opens_at_ms() / 1000, raw.pre_count, rate
            )
        elif raw.position is not None:
            eta = eta_seconds(raw.position, rate)
        return Ticket(
            ticket=raw.ticket,
            position=raw.position,
            status="admitted" if raw.status == "admitted" else "waiting",
            eta_seconds=eta,
            pre_queue=raw.status == "pre",
            created=raw.created,
        )

    async def poll(self, config: RoomConfig, ticket: str) -> PollResult:
        """Status of a ticket; raises UnknownTicket or PollRateLimited."""
        if not is_safe_id(ticket):
            raise UnknownTicket(ticket)
        keys = RoomKeys(config.event_id)
        now_ms = self._now_ms()
        raw = await q.poll(
            self._scripts,
            keys,
            ticket=ticket,
            now_ms=now_ms,
            opens_at_ms=config.opens_at_ms(),
            seed=self._seed(),
            admit_per_second=config.admit_per_second,
            poll_limit=self.poll_limit_per_second,
        )
        if raw is None:
            raise UnknownTicket(ticket)
        if isinstance(raw, q.Limited):
            metrics.POLLS_LIMITED.labels(config.event_id).inc()
            raise PollRateLimited(raw.retry_after_ms)
        metrics.POLLS.labels(config.event_id).inc()
        rate = parse_rate(raw.rate, config.admit_per_second)
        if raw.status == "admitted":
            token = self._signer.issue(raw.user_id, config.event_id, ticket, raw.expires_at_ms)
            return PollResult("admitted", None, 0, token, user_id=raw.user_id)
        if raw.status == "expired":
            return PollResult("expired", None, None, user_id=raw.user_id)
        if raw.status == "pre":
            eta = pre_queue_eta_seconds(
                now_ms / 1000, config.opens_at_ms() / 1000, raw.pre_count, rate
            )
            return PollResult("waiting", None, eta, pre_queue=True, user_id=raw.user_id)
        position = raw.position or 0
        return PollResult("waiting", position, eta_seconds(position, rate), user_id=raw.user_id)

    async def admit_tick(self, config: RoomConfig, now: float | None = None) -> list[str]:
        """One admission step for `config`'s event (at most once per second across processes).

        Returns the admitted user ids (empty if another caller already ticked this second).
        """
        now = self.clock() if now is None else now
        outcome = await admission.tick(
            self._scripts,
            RoomKeys(config.event_id),
            config,
            now=now,
            seed=self._seed(),
            alpha=self._alpha,
        )
        event = config.event_id
        metrics.QUEUE_LENGTH.labels(event).set(outcome.queue_length)
        metrics.ACTIVE_USERS.labels(event).set(outcome.active)
        if outcome.expired:
            metrics.EXPIRED.labels(event).inc(outcome.expired)
        if outcome.admitted:
            metrics.ADMITTED.labels(event).inc(len(outcome.admitted))
        # Pre-queue joiners waited for the opening, not for the queue: measure from opening.
        opens_at = max(config.opens_at_ms(), 0)
        for adm in outcome.admitted:
            actual = max(0.0, (now * 1000 - max(adm.joined_ms, opens_at)) / 1000)
            metrics.WAIT.labels(event).observe(actual)
            if adm.position_at_join is not None:
                predicted = eta_seconds(adm.position_at_join, adm.rate_at_join)
                metrics.ETA_ERROR.labels(event).observe(predicted - actual)
                metrics.ETA_ABS_ERROR.labels(event).observe(abs(predicted - actual))
        return [adm.user_id for adm in outcome.admitted]

    async def verify_token(self, token: str, user_id: str | int, event_id: str | int) -> bool:
        """True for a valid admission token; otherwise raises TokenRejected(reason).

        Checks signature, expiry, event and user binding, and that this very admission
        (jti = ticket) is still in the active set (not completed, left or expired).
        """
        event, user = str(event_id), str(user_id)
        try:
            claims = self._signer.decode(token)
            if claims.event_id != event:
                raise TokenRejected("wrong_event", "admission token is for another event")
            if claims.user_id != user:
                raise TokenRejected("wrong_user", "admission token is for another user")
            if not is_safe_id(event):
                raise TokenRejected("wrong_event", "invalid event id")
            keys = RoomKeys(event)
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zscore(keys.active, user)
                pipe.hget(keys.users, user)
                expiry, current_ticket = await pipe.execute()
            if current_ticket is not None and isinstance(current_ticket, bytes):
                current_ticket = current_ticket.decode()
            if expiry is None or float(expiry) <= self._now_ms() or current_ticket != claims.ticket:
                raise TokenRejected("not_active", "admission is no longer active")
        except TokenRejected as exc:
            metrics.TOKEN_REJECTIONS.labels(event, exc.reason).inc()
            raise
        return True

    async def complete(self, event: EventRef, user_id: str | int) -> bool:
        """The user finished (e.g. payment done): free the active slot at once.

        Returns whether the user held an active slot.
        """
        was_active, _ = await q.remove(self._scripts, RoomKeys(_event_id(event)), str(user_id))
        return was_active

    async def leave(self, event: EventRef, user_id: str | int) -> bool:
        """The user gives up: leave the queue or free the active slot.

        Returns whether the user was waiting or active.
        """
        was_active, was_waiting = await q.remove(
            self._scripts, RoomKeys(_event_id(event)), str(user_id)
        )
        return was_active or was_waiting

    async def ticket_owner(self, event: EventRef, ticket: str) -> str | None:
        """The user id a ticket was issued to, or None for an unknown ticket."""
        owner = await self.redis.hget(RoomKeys(_event_id(event)).tickets, ticket)
        if owner is None:
            return None
        return owner.decode() if isinstance(owner, bytes) else str(owner)

    async def reset(self, event: EventRef) -> None:
        """Delete all of an event's room state (ops/tests; poll-limit counters expire alone)."""
        keys = RoomKeys(_event_id(event))
        await self.redis.delete(*keys.all_static())
