"""The join's bot defence at the HTTP edge: per-IP limits and the proof-of-work gate.

`prepare_join` runs before the join: the PoW check is CPU only (one HMAC, one SHA-256); the
count of the address's joins and the claim of the solution (single use) then run first inside
the join script itself (one round trip per join). The gate's anonymous join counts with
`check_join`, a script call of its own. Refusals are problem+json: 429 with Retry-After for
limits, 403 carrying a fresh challenge for PoW.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response

from waitingroom.config import RoomConfig
from waitingroom.pow import ALGORITHM, ChallengeSigner, PowRejected
from waitingroom.problem import problem
from waitingroom.throttle import (
    JoinGuard,
    Throttle,
    join_counter_key,
    solution_key,
    unknown_poll_key,
)

ClientIp = Callable[[Request], str]
CHALLENGE_HEADER = "x-pow-challenge"
NONCE_HEADER = "x-pow-nonce"

REFUSALS = Counter(
    "waitingroom_defence_refusals_total",
    "Joins and polls refused by the bot defence, by reason",
    ["event", "reason"],
)


def peer_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _retry_after(ms: int) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(ms / 1000)))}


class JoinDefence:
    def __init__(
        self,
        throttle: Throttle,
        signer: ChallengeSigner,
        *,
        joins_per_minute: int,
        unknown_polls_per_minute: int,
        client_ip: ClientIp = peer_ip,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.throttle = throttle
        self.signer = signer
        self.joins_per_minute = joins_per_minute
        self.unknown_polls_per_minute = unknown_polls_per_minute
        self.client_ip = client_ip
        self._clock = clock

    def challenge_body(self, config: RoomConfig) -> dict[str, Any]:
        """A fresh challenge for the event (`challenge` is null when its difficulty is 0)."""
        body: dict[str, Any] = {"algorithm": ALGORITHM, "difficulty": config.pow_difficulty}
        if config.pow_difficulty <= 0:
            return {**body, "challenge": None, "expires": None}
        challenge = self.signer.issue(config.event_id, config.pow_difficulty)
        return {**body, "challenge": challenge.token, "expires": challenge.expires_ms}

    def _pow_refused(self, config: RoomConfig, exc: PowRejected) -> Response:
        REFUSALS.labels(config.event_id, f"pow_{exc.reason}").inc()
        return problem(
            403,
            "Proof of work required",
            f"{exc}; solve the challenge in this answer (or GET "
            f"/api/events/{config.event_id}/challenge) and join again",
            "pow-required",
            extra={"reason": exc.reason, **self.challenge_body(config)},
        )

    def prepare_join(self, request: Request, config: RoomConfig) -> Response | JoinGuard | None:
        """The refusal to send at once (a bad PoW solution: CPU only), or the checks the join
        script makes before it queues anyone (None: nothing to check)."""
        if not config.enabled:
            return None  # the join answers "closed"; no point asking for work first
        claim: str | None = None
        ttl_ms = 0
        if config.pow_difficulty > 0:
            try:
                challenge = self.signer.verify(
                    request.headers.get(CHALLENGE_HEADER, ""),
                    request.headers.get(NONCE_HEADER, ""),
                    config.event_id,
                    config.pow_difficulty,
                )
            except PowRejected as exc:
                return self._pow_refused(config, exc)
            claim = solution_key(config.event_id, challenge.id)
            # Remembered until the challenge expires (+1 s for clock steps): then it is refused
            # as expired anyway.
            ttl_ms = max(1, challenge.expires_ms - int(self._clock() * 1000)) + 1000
        if self.joins_per_minute <= 0 and claim is None:
            return None  # nothing to count or claim: the join script checks nothing
        counter = join_counter_key(config.event_id, self.client_ip(request))
        return JoinGuard(counter, self.joins_per_minute, claim, ttl_ms)

    def refused(self, config: RoomConfig, outcome: str, retry_after_ms: int) -> Response:
        """The answer to a join the checks refused: 429 (limit) or 403 (solution reused)."""
        if outcome == "limited":
            REFUSALS.labels(config.event_id, "joins_per_ip").inc()
            return problem(
                429,
                "Too many joins",
                f"at most {self.joins_per_minute} queue joins per minute from one address",
                "join-rate-limited",
                headers=_retry_after(retry_after_ms),
            )
        return self._pow_refused(config, PowRejected("reused", "this challenge was already used"))

    async def check_join(
        self, request: Request, config: RoomConfig, *, proof_of_work: bool = True
    ) -> Response | None:
        """None when the join may go ahead; otherwise the refusal to send. A script call of its
        own, before the join's: for joins that do not pass a guard to the join script.

        `proof_of_work=False` (the nginx gate's anonymous join, whose page has no solver yet)
        still counts the per-address join limit."""
        if not config.enabled:
            return None
        if not proof_of_work or config.pow_difficulty <= 0:
            if self.joins_per_minute <= 0:
                return None  # nothing to count or claim: no Redis call at all
            guard: Response | JoinGuard | None = JoinGuard(
                join_counter_key(config.event_id, self.client_ip(request)), self.joins_per_minute
            )
        else:
            guard = self.prepare_join(request, config)
        if not isinstance(guard, JoinGuard):
            return guard
        result = await self.throttle.check(
            guard.counter_key, guard.limit, guard.solution_key, guard.solution_ttl_ms
        )
        if result.outcome == "ok":
            return None
        return self.refused(config, result.outcome, result.retry_after_ms)

    async def check_unknown_poll(self, request: Request, config: RoomConfig) -> Response | None:
        """Called for a poll of an unknown ticket: None, or a 429 once an address probes
        more than the limit of unknown tickets per minute."""
        key = unknown_poll_key(config.event_id, self.client_ip(request))
        retry_ms = await self.throttle.hit(key, self.unknown_polls_per_minute)
        if retry_ms is None:
            return None
        REFUSALS.labels(config.event_id, "unknown_polls_per_ip").inc()
        return problem(
            429,
            "Too many unknown tickets",
            f"at most {self.unknown_polls_per_minute} polls of unknown tickets per minute"
            " from one address",
            "unknown-ticket-rate-limited",
            headers=_retry_after(retry_ms),
        )
