"""Fixtures for the seat-cache tests: real Redis (db 13) and real PostgreSQL.

Loaded by the cache test modules through `pytest_plugins` (no conftest.py needed); test modules
import helpers from tests.cache_helpers, never this module, so pytest can rewrite its asserts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from redis.asyncio import Redis

from tests.cache_helpers import TEST_PG_URL, TEST_REDIS_URL
from tests.redis_cluster import REDIS_BACKENDS, async_client, close_client

pytest_plugins = ["tests.cluster_fixtures"]


@pytest.fixture(params=REDIS_BACKENDS)
async def redis_client(request: pytest.FixtureRequest) -> AsyncIterator[Redis]:
    # Single Redis: a blocking pool, 200 concurrent readers queue for a connection.
    client = async_client(request, TEST_REDIS_URL, max_connections=64)
    await client.flushdb()
    yield client
    await close_client(client)


@pytest.fixture(scope="session")
async def pg_pool() -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(TEST_PG_URL, min_size=2, max_size=10)
    assert pool is not None
    yield pool
    await pool.close()
