"""Connection checks before start: one line saying what is unreachable and how to fix it."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import asyncpg
import redis.asyncio as aioredis

from booking.db import with_database
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


async def check_redis(url: str) -> str | None:
    client = aioredis.Redis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError) as exc:
        return (
            f"Redis is unreachable at {_where(url)} ({type(exc).__name__}: {exc}); "
            "start it or set REDIS_URL"
        )
    finally:
        await client.aclose()
    return None


async def preflight(settings: Settings) -> list[str]:
    """Problems found, one line each (empty when both services answer)."""
    results = await asyncio.gather(
        check_postgres(settings.database_url), check_redis(settings.redis_url)
    )
    return [r for r in results if r]
