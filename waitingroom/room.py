"""WaitingRoom: the facade the routes and the booking app use."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Callable

from prometheus_client import Counter
from redis.asyncio import Redis

from waitingroom import admission, metrics
from waitingroom import queue as q
from waitingroom.config import RoomConfig
from waitingroom.errors import (
    PollRateLimited,
    RoomClosed,
    TokenRejected,
    UnknownTicket,
)
from waitingroom.eta import EWMA_ALPHA, eta_seconds, parse_rate, pre_queue_eta_seconds
from waitingroom.keys import RoomKeys, is_safe_id
from waitingroom.models import PollResult, Ticket
from waitingroom.revocations import REVOCATION_CHANNEL, RevocationFeed
from waitingroom.scripts import Scripts
from waitingroom.signing import KeyRing
from waitingroom.throttle import JoinGuard
from waitingroom.tokens import DEFAULT_TTL_SECONDS, AdmissionClaims, TokenSigner

EventRef = RoomConfig | str | int
# Pre-queue members moved into the queue per script call at opening: a few ms of Redis time
# per call even with a million pre-queued (see docs/waitingroom-cost.md for the measurement).
OPENING_CHUNK = 1000
# Hang guard on one opening drive: 10M pre-queued buyers at the default chunk.
_MAX_OPENING_STEPS = 10_000
# Events whose key names and metric children a process keeps (oldest dropped first).
_MAX_CACHED_EVENTS = 4096


def _event_id(event: EventRef) -> str:
    return event.event_id if isinstance(event, RoomConfig) else str(event)


class WaitingRoom:
    def __init__(
        self,
        redis: Redis,
        keys: KeyRing | str,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        poll_limit_per_second: int = 2,
        ewma_alpha: float = EWMA_ALPHA,
        batch: bool = True,
        token_ttl_seconds: int = DEFAULT_TTL_SECONDS,
        key_prefix: str = "",
        opening_chunk: int = OPENING_CHUNK,
    ) -> None:
        """`keys` signs admission tokens (a plain string derives a development-only key from it);
        `clock` returns epoch seconds; `rng` draws the pre-queue order (tests fix it);
        `batch` pipelines concurrent script calls (see batching.py); `key_prefix` goes before
        every key (REDIS_KEY_PREFIX); `opening_chunk` bounds the pre-queue members one script
        call moves at opening."""
        self.redis = redis
        self.clock = clock
        self.poll_limit_per_second = poll_limit_per_second
        self._rng = rng or random.SystemRandom()
        self._alpha = ewma_alpha
        self._scripts = Scripts.register(redis, batch=batch)
        ring = keys if isinstance(keys, KeyRing) else KeyRing.development(keys)
        self.signer = TokenSigner(ring, clock, token_ttl_seconds)
        # Fed by run_revocation_feed (the app runs it); until then verify() reads Redis.
        self.revocations = RevocationFeed(clock, token_ttl_seconds)
        self._opening_chunk = max(1, opening_chunk)
        self._openings: dict[str, asyncio.Task[None]] = {}
        self._listeners: list[Callable[[str], None]] = []
        self.key_prefix = key_prefix
        # Per event, built once (a join is on the surge path): key names, the joins counter.
        self._room_keys: dict[str, RoomKeys] = {}
        self._join_counters: dict[str, Counter] = {}

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """`listener(event_id)` runs after this process changed who waits where (admission,
        leave, opening): in-process views drop their snapshot at once."""
        self._listeners.append(listener)

    def _changed(self, event_id: str) -> None:
        for listener in self._listeners:
            listener(event_id)

    def _keys(self, event_id: str) -> RoomKeys:
        keys = self._room_keys.get(event_id)
        if keys is None:
            keys = self._room_keys[event_id] = RoomKeys(event_id, self.key_prefix)
            if len(self._room_keys) > _MAX_CACHED_EVENTS:
                self._room_keys.pop(next(iter(self._room_keys)))
        return keys

    def _joins_counter(self, event_id: str) -> Counter:
        # labels() costs a lock and a lookup per call: keep the child per event.
        child = self._join_counters.get(event_id)
        if child is None:
            child = self._join_counters[event_id] = metrics.JOINS.labels(event_id)
            if len(self._join_counters) > _MAX_CACHED_EVENTS:
                self._join_counters.pop(next(iter(self._join_counters)))
        return child

    def keys_for(self, event: EventRef) -> RoomKeys:
        """The event's Redis keys as this room names them (with REDIS_KEY_PREFIX)."""
        return self._keys(_event_id(event))

    @property
    def revocation_channel(self) -> str:
        """Deployments sharing a Redis (Cluster) revoke only their own tokens."""
        return self.key_prefix + REVOCATION_CHANNEL

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _pre_key(self) -> int:
        # 52 bits: exact in a Lua double; ties (then ordered by user id) are vanishingly rare.
        return self._rng.getrandbits(52)

    async def finish_opening(self, config: RoomConfig) -> None:
        """Move the pre-queue into the queue if the opening is due and the move is not done.

        One drive per event per process (concurrent callers await the same one); each step
        is one short script, so Redis serves other clients between the chunks."""
        event = config.event_id
        task = self._openings.get(event)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self._drive_opening(config))
            self._openings[event] = task
        await asyncio.shield(task)

    async def _drive_opening(self, config: RoomConfig) -> None:
        keys = self._keys(config.event_id)
        moved_any = False
        for _ in range(_MAX_OPENING_STEPS):
            moved, still_pre = await q.open_step(
                self._scripts,
                keys,
                now_ms=self._now_ms(),
                opens_at_ms=config.opens_at_ms(),
                chunk=self._opening_chunk,
            )
            moved_any = moved_any or moved > 0
            if still_pre == 0:
                break
        if moved_any:
            self._changed(config.event_id)

    async def join(
        self, config: RoomConfig, user_id: str | int, guard: JoinGuard | None = None
    ) -> Ticket:
        """Idempotent: a user already waiting or admitted gets the same ticket and place.

        With a `guard` (the bot defence's per-address count and PoW claim) the same script
        checks it first and raises JoinRefused instead of queueing."""
        if not config.enabled:
            raise RoomClosed(f"waiting room of event {config.event_id} is not enabled")
        keys = self._keys(config.event_id)
        now_ms = self._now_ms()
        opens_at_ms = config.opens_at_ms()
        raw = await q.join(
            self._scripts,
            keys,
            user_id=str(user_id),
            new_ticket=secrets.token_urlsafe(16),
            now_ms=now_ms,
            opens_at_ms=opens_at_ms,
            # The draw key is read only by a join before the opening (the pre-queue).
            pre_key=self._pre_key() if now_ms < opens_at_ms else 0,
            admit_per_second=config.admit_per_second,
            guard=guard,
        )
        self._joins_counter(config.event_id).inc()
        if raw.opening:
            await self.finish_opening(config)
        rate = parse_rate(raw.rate, config.admit_per_second)
        eta: int | None = None
        if raw.status == "pre":
            eta = pre_queue_eta_seconds(now_ms / 1000, opens_at_ms / 1000, raw.pre_count, rate)
        elif raw.position is not None:
            eta = eta_seconds(raw.position, rate)
        return Ticket(
            ticket=raw.ticket,
            position=raw.position,
            status="admitted" if raw.status == "admitted" else "waiting",
            eta_seconds=eta,
            pre_queue=raw.status == "pre",
            created=raw.created,
            score=raw.score,
        )

    async def poll(self, config: RoomConfig, ticket: str) -> PollResult:
        """Status of a ticket, exact (one script); raises UnknownTicket or PollRateLimited."""
        return (await self.poll_with_score(config, ticket))[0]

    async def poll_with_score(self, config: RoomConfig, ticket: str) -> tuple[PollResult, int]:
        """`poll` plus the ticket's queue score (0 unless waiting in the queue), which an
        in-process view caches to answer later polls without Redis."""
        if not is_safe_id(ticket):
            raise UnknownTicket(ticket)
        keys = self._keys(config.event_id)
        now_ms = self._now_ms()
        raw = await q.poll(
            self._scripts,
            keys,
            ticket=ticket,
            now_ms=now_ms,
            opens_at_ms=config.opens_at_ms(),
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
            token = self.signer.issue(raw.user_id, config.event_id, ticket, raw.expires_at_ms)
            return PollResult("admitted", None, 0, token, user_id=raw.user_id), 0
        if raw.status == "expired":
            return PollResult("expired", None, None, user_id=raw.user_id), 0
        if raw.status == "pre":
            eta = pre_queue_eta_seconds(
                now_ms / 1000, config.opens_at_ms() / 1000, raw.pre_count, rate
            )
            return PollResult("waiting", None, eta, pre_queue=True, user_id=raw.user_id), 0
        position = raw.position or 0
        result = PollResult("waiting", position, eta_seconds(position, rate), user_id=raw.user_id)
        return result, raw.score

    async def admit_tick(self, config: RoomConfig, now: float | None = None) -> list[str]:
        """One admission step for `config`'s event (at most once per second across processes).

        Returns the admitted user ids (empty if another caller already ticked this second).
        """
        now = self.clock() if now is None else now
        await self.finish_opening(config)
        outcome = await admission.tick(
            self._scripts,
            self._keys(config.event_id),
            config,
            now=now,
            alpha=self._alpha,
        )
        event = config.event_id
        if outcome.admitted or outcome.expired:
            self._changed(event)
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

    async def verify(self, token: str, event_id: str | int | None = None) -> AdmissionClaims:
        """The claims of a valid admission token; otherwise raises TokenRejected(reason).

        Checks signature and kid, expiry, the event (when given), and that this very admission
        (jti = ticket) did not end early (completed, left, room reset): from the revocation feed
        when it is trusted, else from the active set in Redis.
        """
        label = "" if event_id is None else str(event_id)
        try:
            claims = self.signer.decode(token)
            label = label or claims.event_id
            if event_id is not None and claims.event_id != str(event_id):
                raise TokenRejected("wrong_event", "admission token is for another event")
            if not is_safe_id(claims.event_id) or ":" in claims.event_id:
                raise TokenRejected("forged", "invalid event id in admission token")
            revoked = self.revocations.revoked(claims.event_id, claims.ticket, claims.issued_at)
            if revoked is None:
                await self._require_active(claims)
            elif revoked:
                raise TokenRejected("revoked", "admission is no longer active")
        except TokenRejected as exc:
            metrics.TOKEN_REJECTIONS.labels(label if is_safe_id(label) else "?", exc.reason).inc()
            raise
        return claims

    async def _active_expiry_ms(self, claims: AdmissionClaims) -> int | None:
        """When the admission `claims` stand for ends, or None if it is no longer active."""
        keys = self._keys(claims.event_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zscore(keys.active, claims.user_id)
            pipe.hget(keys.users, claims.user_id)
            expiry, current_ticket = await pipe.execute()
        if isinstance(current_ticket, bytes):
            current_ticket = current_ticket.decode()
        if expiry is None or float(expiry) <= self._now_ms() or current_ticket != claims.ticket:
            return None
        return int(expiry)

    async def _require_active(self, claims: AdmissionClaims) -> None:
        if await self._active_expiry_ms(claims) is None:
            raise TokenRejected("revoked", "admission is no longer active")

    async def reissue(self, claims: AdmissionClaims) -> str | None:
        """A fresh token for the admission `claims` stand for, or None if it is not active."""
        expiry = await self._active_expiry_ms(claims)
        if expiry is None:
            return None
        return self.signer.issue(claims.user_id, claims.event_id, claims.ticket, expiry)

    async def verify_token(self, token: str, user_id: str | int, event_id: str | int) -> bool:
        """True for a valid admission token of this user for this event; otherwise raises
        TokenRejected(reason) (see `verify`; also `wrong_user`)."""
        event, user = str(event_id), str(user_id)
        try:
            claims = self.signer.decode(token)
            if claims.event_id != event:
                raise TokenRejected("wrong_event", "admission token is for another event")
            if claims.user_id != user:
                raise TokenRejected("wrong_user", "admission token is for another user")
            if not is_safe_id(event):
                raise TokenRejected("wrong_event", "invalid event id")
            await self._require_active(claims)
        except TokenRejected as exc:
            metrics.TOKEN_REJECTIONS.labels(event, exc.reason).inc()
            raise
        return True

    async def complete(self, event: EventRef, user_id: str | int) -> bool:
        """The user finished (e.g. payment done): free the active slot at once.

        Returns whether the user held an active slot.
        """
        event_id = _event_id(event)
        was_active, _ = await q.remove(self._scripts, self._keys(event_id), str(user_id))
        self._changed(event_id)
        return was_active

    async def leave(self, event: EventRef, user_id: str | int) -> bool:
        """The user gives up: leave the queue or free the active slot.

        Returns whether the user was waiting or active.
        """
        event_id = _event_id(event)
        was_active, was_waiting = await q.remove(self._scripts, self._keys(event_id), str(user_id))
        self._changed(event_id)
        return was_active or was_waiting

    async def ticket_owner(self, event: EventRef, ticket: str) -> str | None:
        """The user id a ticket was issued to, or None for an unknown ticket."""
        owner = await self.redis.hget(self._keys(_event_id(event)).tickets, ticket)
        if owner is None:
            return None
        return owner.decode() if isinstance(owner, bytes) else str(owner)

    async def set_paused(self, event: EventRef, paused: bool) -> None:
        """Pause or resume admissions; the admission script reads this key on every tick."""
        key = self._keys(_event_id(event)).paused
        if paused:
            await self.redis.set(key, "1")
        else:
            await self.redis.delete(key)

    async def reset(self, event: EventRef) -> None:
        """Delete all of an event's room state (ops/tests; poll-limit counters expire alone)."""
        keys = self._keys(_event_id(event))
        await self.redis.delete(*keys.all_static())
        # Every admission of the event ended: revoke its tokens issued until now.
        await self.redis.publish(self.revocation_channel, f"e|{keys.event_id}|{self._now_ms()}")
        self._changed(keys.event_id)
