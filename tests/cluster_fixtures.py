"""The session's Redis Cluster, for the modules that load this plugin (`pytest_plugins`).

It starts once, at the first test that asks for it, and stops (by PID) at the end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_cluster import RedisClusterNodes, require_redis_binaries, start_cluster


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    require_redis_binaries()
    nodes = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield nodes
    finally:
        nodes.stop()
