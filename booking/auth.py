"""Who sent a request: a bearer token (its form and hash: booking/bearer_tokens.py) or, from a
browser, the session cookie (booking/sessions.py)."""

from __future__ import annotations

import hmac
import time

from starlette.requests import Request

from booking.bearer_tokens import hash_token, is_fresh, tagged
from booking.errors import Problem
from booking.services import services
from booking.sessions import COOKIE_NAME, session_user_id

_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def unknown_token() -> Problem:
    return Problem(401, "unauthenticated", "unknown or revoked token")


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "unauthenticated", "send 'Authorization: Bearer <token>'")
    return token.strip()


def same_origin(request: Request) -> bool:
    """A cookie-authenticated write must come from our own pages (SameSite=Lax already keeps
    the cookie off cross-site POSTs; this also refuses a foreign Origin outright)."""
    origin = request.headers.get("origin")
    if origin is None or request.method in _SAFE_METHODS:
        return True
    return origin.split("://", 1)[-1] == request.headers.get("host", "")


async def authenticate(request: Request) -> int:
    """The id of the user whose bearer token (or, without one, session cookie) came with the
    request, or 401."""
    if "authorization" not in request.headers and COOKIE_NAME in request.cookies:
        if not same_origin(request):
            raise Problem(403, "cross-origin", "session cookies are accepted from this site only")
        session_user = await session_user_id(request)
        if session_user is None:
            raise Problem(401, "session-expired", "your session has ended: sign in again")
        return session_user
    token = bearer_token(request)
    running = services(request)
    # A token under our tag names its user: no lookup while this process's copy of the
    # revocations is current (booking/token_revocations.py), else only while it is fresh.
    claim = tagged(running.bearer_key, token)
    if claim is not None:
        if running.token_revocations.current():
            if running.token_revocations.revoked(claim):
                raise unknown_token()
            return claim.user_id
        if is_fresh(claim, time.time(), running.bearer_cache.ttl_seconds):
            return claim.user_id
    digest = hash_token(token)
    if (cached := running.bearer_cache.get(digest)) is not None:
        return cached
    user_id = await running.bearer_lookup.user_id(digest)  # coalesced with concurrent misses
    if user_id is None:
        raise unknown_token()
    running.bearer_cache.put(digest, int(user_id))
    return int(user_id)


def require_admin(request: Request) -> None:
    token = bearer_token(request)
    expected: str = services(request).settings.admin_token
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise Problem(403, "forbidden", "admin token required")
