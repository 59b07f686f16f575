"""Browser sessions: one identity across pages and tabs.

The cookie is `<payload>.<signature>`: the payload (base64url JSON) carries a random session
token, the user's id and name and an expiry; the signature is HMAC-SHA256 with SESSION_SECRET.
Pages read the name from a verified cookie without touching the database (the header on every
page); the API additionally looks the token's SHA-256 up in `web_sessions`, so signing out (the
row deleted) ends the session at once even for a copied cookie.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from booking.core_services import core_services
from booking.settings import session_cookie_secure

COOKIE_NAME = "fs_session"
# Name lengths are capped at 200 characters by the schema; this bounds the cookie's size.
MAX_COOKIE_CHARS = 3000


@dataclass(frozen=True)
class SessionCookie:
    token: str
    user_id: int
    name: str
    expires_at: int  # epoch seconds


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def encode_cookie(secret: str, cookie: SessionCookie) -> str:
    body = {"t": cookie.token, "u": cookie.user_id, "n": cookie.name, "e": cookie.expires_at}
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    return f"{payload}.{_signature(secret, payload)}"


def decode_cookie(secret: str, value: str, now: float | None = None) -> SessionCookie | None:
    """The cookie's contents if its signature is ours and it has not expired, else None."""
    if not value or len(value) > MAX_COOKIE_CHARS or value.count(".") != 1:
        return None
    payload, signature = value.split(".")
    if not hmac.compare_digest(signature, _signature(secret, payload)):
        return None
    try:
        body: Any = json.loads(_unb64(payload))
        cookie = SessionCookie(str(body["t"]), int(body["u"]), str(body["n"]), int(body["e"]))
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    if cookie.expires_at <= (time.time() if now is None else now):
        return None
    return cookie


def _secret(request: Request) -> str:
    secret: str = core_services(request).settings.session_secret
    return secret


def page_user(request: Request) -> SessionCookie | None:
    """Who the browser says it is, from the signed cookie alone (no database): for rendering."""
    value = request.cookies.get(COOKIE_NAME)
    return decode_cookie(_secret(request), value) if value else None


async def session_user_id(request: Request) -> int | None:
    """The user of a valid, not signed-out session cookie, or None."""
    cookie = page_user(request)
    if cookie is None:
        return None
    pool: asyncpg.Pool = core_services(request).pool
    user_id = await pool.fetchval(
        "SELECT user_id FROM web_sessions WHERE token_hash = $1 AND expires_at > now()",
        token_hash(cookie.token),
    )
    return None if user_id is None else int(user_id)


async def start_session(
    request: Request, response: Response, user_id: int, name: str
) -> SessionCookie:
    """Store a new session for the user and set its cookie on `response`."""
    settings = core_services(request).settings
    max_age: int = settings.session_max_age_seconds
    cookie = SessionCookie(secrets.token_urlsafe(32), user_id, name, int(time.time()) + max_age)
    pool: asyncpg.Pool = core_services(request).pool
    async with pool.acquire() as conn, conn.transaction():
        # The user's own expired sessions go as a new one starts: the table never just grows.
        await conn.execute(
            "DELETE FROM web_sessions WHERE user_id = $1 AND expires_at <= now()", user_id
        )
        await conn.execute(
            "INSERT INTO web_sessions (token_hash, user_id, expires_at)"
            " VALUES ($1, $2, to_timestamp($3))",
            token_hash(cookie.token),
            user_id,
            cookie.expires_at,
        )
    response.set_cookie(
        COOKIE_NAME,
        encode_cookie(_secret(request), cookie),
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=session_cookie_secure(settings),
    )
    return cookie


async def end_session(request: Request, response: Response) -> None:
    """Delete the session's row (if any) and the cookie."""
    cookie = page_user(request)
    if cookie is not None:
        pool: asyncpg.Pool = core_services(request).pool
        await pool.execute(
            "DELETE FROM web_sessions WHERE token_hash = $1", token_hash(cookie.token)
        )
    response.delete_cookie(
        COOKIE_NAME,
        path="/",
        httponly=True,
        samesite="lax",
        secure=session_cookie_secure(core_services(request).settings),
    )
