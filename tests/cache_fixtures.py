"""Fixtures for the seat-cache tests: real Redis (db 13) and real PostgreSQL.

Loaded by the cache test modules through `pytest_plugins` (no conftest.py needed); test modules
import helpers from tests.cache_helpers, never this module, so pytest can rewrite its asserts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from tests.cache_helpers import TEST_PG_URL, TEST_REDIS_URL


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    # A blocking pool: 200 concurrent readers queue for a connection instead of failing.
    pool = BlockingConnectionPool.from_url(TEST_REDIS_URL, max_connections=64, timeout=20)
    client = Redis.from_pool(pool)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
async def pg_pool() -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(TEST_PG_URL, min_size=2, max_size=10)
    assert pool is not None
    yield pool
    await pool.close()
