"""Bearer tokens: made once (users at sign-up, operators), stored only as a SHA-256 hash; a
user's token names its user: `ft1.<user id>.<issued at>.<secret>.<mac>`.

In a surge every buyer's first request comes with a token no web process has seen, and looking
it up cost a PostgreSQL query per join and per process. A token issued by `issue` carries its
user id and issue second under an HMAC, so a process trusts the user it names without asking
PostgreSQL: while the process's copy of the revocations is current, unless the user's tokens
were revoked since it was issued (booking/token_revocations.py, booking/auth.py); without a
current copy, only in the token's first AUTH_CACHE_SECONDS. A token the tag does not vouch for
(an older form, a rotated key) goes the usual way: the cache, then `users.token_hash`.

The database stores the SHA-256 of the random part only (`stored_secret`), so the hash can be
written in the same INSERT that assigns the user id the token then names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "ft1"
_CLOCK_SKEW_SECONDS = 5
_MAC_BYTES = 16  # 128-bit tag: forging one is as hard as guessing the 256-bit secret's hash


def mac_key(session_secret: str) -> bytes:
    """The tag's key, derived from SESSION_SECRET (no new secret to deploy; a rotated secret
    only sends fresh tokens the slow way)."""
    return hmac.new(session_secret.encode(), b"bearer-token-v1", hashlib.sha256).digest()


def _tag(key: bytes, signed: str) -> str:
    digest = hmac.new(key, signed.encode(), hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue(key: bytes, user_id: int, issued_at: int, secret: str) -> str:
    signed = f"{PREFIX}.{user_id}.{issued_at}.{secret}"
    return f"{signed}.{_tag(key, signed)}"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def stored_secret(token: str) -> str:
    """The part of a token whose SHA-256 the database keeps: the random secret of an `ft1`
    token, the whole of any other."""
    parts = token.split(".")
    if len(parts) == 5 and parts[0] == PREFIX:
        return parts[3]
    return token


@dataclass(frozen=True)
class Tagged:
    user_id: int
    issued_at: int  # epoch second (PostgreSQL's clock)


def tagged(key: bytes, token: str) -> Tagged | None:
    """The user and issue second an `ft1` token names, if its tag is ours; None for any other
    token (an older form, a foreign or rotated key, a changed part)."""
    parts = token.split(".")
    if len(parts) != 5 or parts[0] != PREFIX:
        return None
    _, user, issued, secret, tag = parts
    if not (user.isdigit() and issued.isdigit() and secret):
        return None
    signed = f"{PREFIX}.{user}.{issued}.{secret}"
    if not hmac.compare_digest(tag, _tag(key, signed)):
        return None
    return Tagged(int(user), int(issued))


def is_fresh(claim: Tagged, now: float, fresh_seconds: float) -> bool:
    """Issued within the last `fresh_seconds` (the issue time is PostgreSQL's clock: a little
    skew to this process's clock is allowed)."""
    return -_CLOCK_SKEW_SECONDS <= now - claim.issued_at < fresh_seconds


def hash_token(token: str) -> bytes:
    """What `users.token_hash` keeps for a token: the SHA-256 of its random secret (the whole
    token for one without the `ft1` form). 256-bit random values need no password stretching."""
    return hashlib.sha256(stored_secret(token).encode()).digest()
