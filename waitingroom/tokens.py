"""Admission tokens: Ed25519-signed JWTs (with a `kid`) bound to one user, one event and one
admission (jti = ticket).

A token lives at most `ttl_seconds` (and never past the admission itself): a verifier that checks
only the signature, offline with the published keys, cannot see a revocation, so the short life
bounds how long a revoked admission keeps working there. The poll re-issues a fresh token while
the admission is active.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jwt

from waitingroom.errors import TokenRejected
from waitingroom.signing import ALGORITHM, KeyRing

DEFAULT_TTL_SECONDS = 60
# Verified tokens remembered per process: a buyer presents the same token on every request for
# up to a minute, and the signature check is most of a verification's CPU.
VERIFIED_CACHE_SIZE = 20_000


@dataclass(frozen=True)
class AdmissionClaims:
    user_id: str
    event_id: str
    ticket: str
    expires_at: int  # epoch seconds
    kid: str = ""
    issued_at: int = 0  # epoch seconds


class TokenSigner:
    def __init__(
        self, keys: KeyRing, clock: Callable[[], float], ttl_seconds: int = DEFAULT_TTL_SECONDS
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError("admission token lifetime must be > 0")
        self.keys = keys
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        # token -> (claims, instant its key stops being accepted or +inf)
        self._verified: dict[str, tuple[AdmissionClaims, float]] = {}

    def issue(self, user_id: str, event_id: str, ticket: str, expires_at_ms: int) -> str:
        now = int(self._clock())
        # Floor to whole seconds: the token never outlives the active-set entry.
        claims = {
            "sub": user_id,
            "evt": event_id,
            "jti": ticket,
            "iat": now,
            "exp": min(expires_at_ms // 1000, now + self.ttl_seconds),
        }
        return jwt.encode(
            claims, self.keys.signer, algorithm=ALGORITHM, headers={"kid": self.keys.signer_kid}
        )

    def decode(self, token: str) -> AdmissionClaims:
        """Check signature and expiry (against the injected clock); raise TokenRejected."""
        now = self._clock()
        cached = self._verified.get(token)
        if cached is not None and now < cached[1]:
            claims = cached[0]
        else:
            claims = self._verify_signature(token, now)
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                # Oldest first (insertion order): those are the ones expiring soonest.
                del self._verified[next(iter(self._verified))]
            self._verified[token] = (claims, self.keys.not_after(claims.kid))
        if now >= claims.expires_at:
            raise TokenRejected("expired", "admission token expired")
        return claims

    def _verify_signature(self, token: str, now: float) -> AdmissionClaims:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise TokenRejected("forged", f"invalid admission token: {exc}") from exc
        if not isinstance(kid, str):
            raise TokenRejected("forged", "admission token without a key id")
        key = self.keys.verify_key(kid, now)
        if key is None:
            raise TokenRejected("forged", "admission token signed with an unknown or retired key")
        try:
            # Expiry is checked below against our clock, not pyjwt's wall clock.
            raw = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "require": ["sub", "evt", "jti", "exp", "iat"],
                },
            )
        except jwt.PyJWTError as exc:
            raise TokenRejected("forged", f"invalid admission token: {exc}") from exc
        try:
            claims = AdmissionClaims(
                user_id=str(raw["sub"]),
                event_id=str(raw["evt"]),
                ticket=str(raw["jti"]),
                expires_at=int(raw["exp"]),
                kid=kid,
                issued_at=int(raw["iat"]),
            )
        except (TypeError, ValueError) as exc:
            raise TokenRejected("forged", "malformed admission token claims") from exc
        return claims
