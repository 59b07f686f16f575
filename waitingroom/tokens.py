"""Admission tokens: JWT HS256 bound to one user, one event and one admission (jti=ticket)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jwt

from waitingroom.errors import TokenRejected

ALGORITHM = "HS256"


@dataclass(frozen=True)
class AdmissionClaims:
    user_id: str
    event_id: str
    ticket: str
    expires_at: int  # epoch seconds


class TokenSigner:
    def __init__(self, secret: str, clock: Callable[[], float]) -> None:
        if not secret:
            raise ValueError("admission token secret must not be empty")
        self._secret = secret
        self._clock = clock

    def issue(self, user_id: str, event_id: str, ticket: str, expires_at_ms: int) -> str:
        # Floor to whole seconds: the token never outlives the active-set entry.
        claims = {
            "sub": user_id,
            "evt": event_id,
            "jti": ticket,
            "exp": expires_at_ms // 1000,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def decode(self, token: str) -> AdmissionClaims:
        """Check signature and expiry (against the injected clock); raise TokenRejected."""
        try:
            # Expiry is checked below against our clock, not pyjwt's wall clock.
            raw = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"verify_exp": False, "require": ["sub", "evt", "jti", "exp"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenRejected("forged", f"invalid admission token: {exc}") from exc
        try:
            claims = AdmissionClaims(
                user_id=str(raw["sub"]),
                event_id=str(raw["evt"]),
                ticket=str(raw["jti"]),
                expires_at=int(raw["exp"]),
            )
        except (TypeError, ValueError) as exc:
            raise TokenRejected("forged", "malformed admission token claims") from exc
        if self._clock() >= claims.expires_at:
            raise TokenRejected("expired", "admission token expired")
        return claims
