"""Proof-of-work challenges for joining a queue (as Queue-it does): the server signs a challenge,
the client finds a nonce whose SHA-256 has `difficulty` leading zero bits, the server checks it.

Shared by the server (issue + verify, O(1): one HMAC and one SHA-256) and by clients that are not
browsers (the Locust buyers use `solve`); the browser's solver is static/js/pow.js, which
hashes exactly the same bytes: UTF-8 of `<challenge>:<nonce>`, nonce a decimal integer.

A challenge is `v1.<event>.<difficulty>.<expires_ms>.<id>.<mac>`: everything the verifier needs
travels with it, so issuing one costs no Redis call. `id` is what the single-use check records.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from typing import Literal

from waitingroom.errors import WaitingRoomError

ALGORITHM = "sha256-leading-zero-bits"
MAX_DIFFICULTY = 32
VERSION = "v1"
_NONCE = re.compile(r"^[0-9]{1,20}$")
_MAC_BYTES = 16

PowReason = Literal[
    "missing", "malformed", "forged", "expired", "wrong_event", "too_easy", "unsolved", "reused"
]


class PowRejected(WaitingRoomError):
    """A join's proof of work was absent or not acceptable; `reason` says why."""

    def __init__(self, reason: PowReason, detail: str) -> None:
        super().__init__(detail)
        self.reason: PowReason = reason


@dataclass(frozen=True)
class Challenge:
    token: str
    event_id: str
    difficulty: int
    expires_ms: int
    id: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def meets_difficulty(digest: bytes, difficulty: int) -> bool:
    """True when the first `difficulty` bits (0..32) of `digest` are zero."""
    return int.from_bytes(digest[:4], "big") >> (32 - difficulty) == 0 if difficulty else True


def digest(token: str, nonce: str) -> bytes:
    return hashlib.sha256(f"{token}:{nonce}".encode()).digest()


def solve(token: str, difficulty: int, max_tries: int = 1 << 36) -> str:
    """The first nonce (0, 1, 2, …) that meets `difficulty`; expected 2**difficulty hashes."""
    prefix = hashlib.sha256(f"{token}:".encode())
    for n in count():
        if n >= max_tries:
            break
        h = prefix.copy()
        h.update(str(n).encode())
        if meets_difficulty(h.digest(), difficulty):
            return str(n)
    raise RuntimeError(f"no solution in {max_tries} tries")


class ChallengeSigner:
    def __init__(
        self, secret: str, ttl_seconds: int = 120, clock: Callable[[], float] = time.time
    ) -> None:
        self._key = secret.encode()
        self.ttl_ms = ttl_seconds * 1000
        self._clock = clock

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest()[:_MAC_BYTES])

    def issue(self, event_id: str, difficulty: int) -> Challenge:
        if not 0 < difficulty <= MAX_DIFFICULTY:
            raise ValueError(f"difficulty must be 1..{MAX_DIFFICULTY}")
        expires_ms = int(self._clock() * 1000) + self.ttl_ms
        cid = _b64(secrets.token_bytes(12))
        payload = f"{VERSION}.{event_id}.{difficulty}.{expires_ms}.{cid}"
        return Challenge(f"{payload}.{self._mac(payload)}", event_id, difficulty, expires_ms, cid)

    def verify(self, token: str, nonce: str, event_id: str, min_difficulty: int) -> Challenge:
        """The challenge if `nonce` solves it for this event at `min_difficulty` or harder;
        otherwise PowRejected. Single use is the caller's (Redis) check on `Challenge.id`."""
        if not token or not nonce:
            raise PowRejected("missing", "send X-PoW-Challenge and X-PoW-Nonce")
        parts = token.split(".")
        if len(parts) != 6 or parts[0] != VERSION or not _NONCE.match(nonce) or len(token) > 200:
            raise PowRejected("malformed", "the challenge or nonce is malformed")
        _, event, diff, expires, cid, mac = parts
        if not hmac.compare_digest(self._mac(".".join(parts[:5])), mac):
            raise PowRejected("forged", "the challenge was not issued by this server")
        challenge = Challenge(token, event, int(diff), int(expires), cid)
        if event != event_id:
            raise PowRejected("wrong_event", "the challenge is for another event")
        if challenge.expires_ms <= self._clock() * 1000:
            raise PowRejected("expired", "the challenge has expired")
        if challenge.difficulty < min_difficulty:
            raise PowRejected("too_easy", "the event's difficulty was raised; solve a new one")
        if not meets_difficulty(digest(token, nonce), challenge.difficulty):
            raise PowRejected("unsolved", "the nonce does not solve the challenge")
        return challenge
