"""Wiring of the bot defence from settings, and the per-IP limit on new accounts.

The join-side checks live in `waitingroom.defence`; this module builds them from the
environment and applies the same fixed-window counter to account creation.
"""

from __future__ import annotations

import logging
import math

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request

from booking.clientip import client_ip
from booking.domain_errors import TooManyAccounts
from booking.services import services
from booking.settings import Settings
from waitingroom.defence import JoinDefence
from waitingroom.pow import MAX_DIFFICULTY, ChallengeSigner
from waitingroom.throttle import Throttle, account_counter_key

log = logging.getLogger(__name__)


def build_defence(settings: Settings, redis: Redis) -> JoinDefence:
    if not 0 <= settings.pow_difficulty <= MAX_DIFFICULTY:
        raise ValueError(f"POW_DIFFICULTY must be 0..{MAX_DIFFICULTY}")
    return JoinDefence(
        Throttle(redis, settings.redis_key_prefix),
        ChallengeSigner(settings.pow_secret, settings.pow_challenge_ttl_seconds),
        joins_per_minute=settings.joins_per_ip_per_minute,
        unknown_polls_per_minute=settings.unknown_polls_per_ip_per_minute,
        client_ip=client_ip,
    )


async def limit_new_accounts(request: Request) -> None:
    """TooManyAccounts (429) once the client's address created ACCOUNTS_PER_IP_PER_MINUTE
    accounts this minute (not checked while Redis is unreachable)."""
    limit: int = services(request).settings.accounts_per_ip_per_minute
    if limit <= 0:
        return
    defence: JoinDefence = services(request).defence
    try:
        retry_ms = await defence.throttle.hit(account_counter_key(client_ip(request)), limit)
    except RedisError as exc:
        # Fail open: accounts live in PostgreSQL, and while Redis is down nobody can queue
        # anyway (joins answer 503), so an outage must not stop sign-ups as well.
        log.warning("account limit not checked, Redis unavailable: %r", exc)
        return
    if retry_ms is not None:
        raise TooManyAccounts(
            f"at most {limit} new accounts per minute from one address",
            retry_after_seconds=max(1, math.ceil(retry_ms / 1000)),
        )
