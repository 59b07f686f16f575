"""The tests' Redis Cluster: ops/redis_cluster.py's nodes on the tests' ports.

3 masters, each with one replica (6 processes). Started once per session by the `redis_cluster`
fixture (tests/cluster_fixtures.py), stopped by PID. The starter itself lives in ops/ so the
load scripts (which must not import tests/) use the same one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from booking.redis_bounded import BoundedRedisCluster
from booking.redis_clients import close_state_redis
from ops.redis_cluster import NODE_TIMEOUT_MS, RedisClusterNodes, wait_until
from ops.redis_cluster import start_cluster as ops_start_cluster

__all__ = [
    "CLUSTER_PORTS",
    "NODE_TIMEOUT_MS",
    "REDIS_BACKENDS",
    "RedisClusterNodes",
    "async_client",
    "close_client",
    "require_redis_binaries",
    "start_cluster",
    "wait_until",
]

# Our own range (the machine's shared Redis is on 6379; other test groups use other ports).
# TEST_REDIS_CLUSTER_BASE_PORT moves it, so two checkouts can run the cluster tests side by side.
_BASE_PORT = int(os.environ.get("TEST_REDIS_CLUSTER_BASE_PORT", "7101"))
CLUSTER_PORTS = tuple(range(_BASE_PORT, _BASE_PORT + 6))

# Run a Redis-backed suite on one Redis and on the cluster; `-m "not cluster"` keeps the first.
REDIS_BACKENDS = ["single", pytest.param("cluster", marks=pytest.mark.cluster)]


def require_redis_binaries() -> None:
    """Skip without redis-server/redis-cli, but fail in CI (which installs them)."""
    missing = [b for b in ("redis-server", "redis-cli") if shutil.which(b) is None]
    if not missing:
        return
    message = f"Redis Cluster tests need {', '.join(missing)} (Debian: apt install redis-server)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def start_cluster(workdir: Path, ports: tuple[int, ...] = CLUSTER_PORTS) -> RedisClusterNodes:
    return ops_start_cluster(workdir, ports)


def async_client(
    request: pytest.FixtureRequest, single_url: str, max_connections: int
) -> aioredis.Redis:
    """A client of the backend the test is parametrised with (`flushdb` empties either).

    The cluster is the session's (`redis_cluster` fixture). A cluster client is typed as Redis:
    the code under test takes it as one (see booking/redis_clients.py).
    """
    if request.param == "single":
        return aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(
                single_url, max_connections=max_connections, timeout=20
            )
        )
    nodes: RedisClusterNodes = request.getfixturevalue("redis_cluster")
    cluster = BoundedRedisCluster.from_url(nodes.url, max_in_flight=max_connections)
    return cluster  # type: ignore[return-value]


async def close_client(client: aioredis.Redis) -> None:
    await close_state_redis(client)
