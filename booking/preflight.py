"""Connection checks before start: one line saying what is unreachable and how to fix it."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisClusterException

from booking.db import with_database
from booking.redis_clients import build_state_redis, close_state_redis
from booking.settings import Settings

CHECK_TIMEOUT_SECONDS = 3.0


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or ''}".rstrip(":")


async def check_postgres(url: str) -> str | None:
    try:
        conn = await asyncpg.connect(with_database(url, "postgres"), timeout=CHECK_TIMEOUT_SECONDS)
        await conn.close()
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return (
            f"PostgreSQL is unreachable at {_where(url)} ({type(exc).__name__}: {exc}); "
            "start it or set DATABASE_URL"
        )
    return None


async def check_redis(
    url: str, settings: Settings | None = None, variable: str = "REDIS_URL"
) -> str | None:
    """Ping `url`; with `settings`, through the state client (a Redis Cluster if configured)."""
    if settings is None:
        client = aioredis.Redis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS)
    else:
        client = build_state_redis(settings, connect_timeout=CHECK_TIMEOUT_SECONDS)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError, RedisClusterException) as exc:
        return (
            f"Redis is unreachable at {_where(url)} ({type(exc).__name__}: {exc}); "
            f"start it or set {variable}"
        )
    finally:
        await close_state_redis(client)
    return None


async def preflight(settings: Settings) -> list[str]:
    """Problems found, one line each (empty when both services answer)."""
    checks = [
        check_postgres(settings.database_url),
        check_redis(settings.redis_url, settings),
    ]
    if settings.rq_redis_url:  # RQ on its own Redis
        checks.append(check_redis(settings.rq_redis_url, variable="RQ_REDIS_URL"))
    results = await asyncio.gather(*checks)
    return [r for r in results if r]
