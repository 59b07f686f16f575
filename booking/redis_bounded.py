"""A Redis Cluster client whose callers wait for a connection instead of failing.

redis-py's asyncio `RedisCluster` raises MaxConnectionsError once a node's pool is used up; the
single-Redis client uses a BlockingConnectionPool so a surge queues instead. This client
gets the same behaviour from one semaphore: at most `max_in_flight` commands or pipelines are
in flight, and each holds at most one connection per node, so no node's pool runs dry.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import RedisClusterException


class BoundedRedisCluster(RedisCluster):
    def __init__(self, *args: Any, max_in_flight: int = 100, **kwargs: Any) -> None:
        kwargs["max_connections"] = max_in_flight  # per node
        super().__init__(*args, **kwargs)
        self.in_flight = asyncio.Semaphore(max_in_flight)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.in_flight:
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        if shard_hint:
            raise RedisClusterException("shard_hint is deprecated in cluster mode")
        return _BoundedPipeline(self, transaction)  # type: ignore[abstract]


class _BoundedPipeline(ClusterPipeline):
    def __init__(self, client: BoundedRedisCluster, transaction: Any | None = None) -> None:
        super().__init__(client, transaction)
        self._in_flight = client.in_flight

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        async with self._in_flight:
            return await super().execute(raise_on_error, allow_redirections)
