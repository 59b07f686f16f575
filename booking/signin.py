"""Signing in by email with a one-time code.

No mail is sent by this project: with SIGNIN_CODE_ECHO on (development) the code is written to
the server log and returned to the page; in production it must be off and a mailer would go
where `deliver` logs. Codes live in Redis with a TTL (losing them only means asking again);
each email may ask for a few codes per TTL and try a code a few times.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

import asyncpg
from redis.asyncio import Redis

from booking.domain_errors import CodeExpired, InvalidCode, TooManyAttempts, TooManyCodes

log = logging.getLogger(__name__)

CODES_PER_WINDOW = 5
ATTEMPTS_PER_CODE = 5


@dataclass(frozen=True)
class CodeRequest:
    email: str
    user_id: int | None  # None: no account has this email (the answer does not say so)
    code: str | None


def _keys(email: str) -> tuple[str, str]:
    digest = hashlib.sha256(email.encode()).hexdigest()[:32]
    # One hash tag per email: both keys sit in one Redis Cluster slot.
    return f"signin:{{{digest}}}:code", f"signin:{{{digest}}}:sent"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _code_hash(email: str, code: str) -> str:
    return hashlib.sha256(f"{email}\0{code}".encode()).hexdigest()


async def request_code(
    redis: Redis, pool: asyncpg.Pool, email: str, ttl_seconds: int, echo: bool
) -> CodeRequest:
    """Issue a 6-digit code for `email` (replacing an earlier one) if an account has it."""
    code_key, sent_key = _keys(email)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(sent_key)
        pipe.expire(sent_key, ttl_seconds, nx=True)
        pipe.ttl(sent_key)
        sent, _, ttl = await pipe.execute()
    if int(sent) > CODES_PER_WINDOW:
        retry = max(1, int(ttl))
        raise TooManyCodes(
            f"at most {CODES_PER_WINDOW} codes per {ttl_seconds // 60} minutes for one email",
            retry_after_seconds=retry,
        )
    row = await pool.fetchrow("SELECT id FROM users WHERE lower(email) = $1", email)
    if row is None:
        return CodeRequest(email, None, None)
    code = f"{secrets.randbelow(10**6):06d}"
    await redis.hset(
        code_key, mapping={"hash": _code_hash(email, code), "user": row["id"], "tries": 0}
    )
    await redis.expire(code_key, ttl_seconds)
    deliver(email, code, echo)
    return CodeRequest(email, int(row["id"]), code if echo else None)


def deliver(email: str, code: str, echo: bool) -> None:
    """Where a mailer would send the code. Development logs it (see docs/buyer-journey.md)."""
    if echo:
        log.warning(
            "sign-in code for %s: %s (SIGNIN_CODE_ECHO is on: development only)", email, code
        )


async def verify_code(redis: Redis, email: str, code: str) -> int:
    """The user id the code was issued to; the code is used up. CodeExpired, InvalidCode or
    TooManyAttempts otherwise."""
    code_key, _ = _keys(email)
    stored = {_text(k): _text(v) for k, v in (await redis.hgetall(code_key)).items()}
    if not stored:
        raise CodeExpired()
    expected = stored["hash"]
    if not hmac.compare_digest(expected, _code_hash(email, code)):
        tries = await redis.hincrby(code_key, "tries", 1)
        left = ATTEMPTS_PER_CODE - tries
        if left <= 0:
            await redis.delete(code_key)
            raise TooManyAttempts()
        raise InvalidCode(left)
    # Single use: only the caller that deletes the key signs in with it.
    if not await redis.delete(code_key):
        raise CodeExpired()
    return int(stored["user"])
