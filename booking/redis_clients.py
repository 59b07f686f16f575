"""The one place that builds Redis clients from the settings.

Two connections with different jobs:
- the *state* client (waiting room, seat cache and its locks, rate limits): a single Redis, or a
  Redis Cluster when REDIS_CLUSTER=1 (REDIS_URL then names any node; the client discovers the
  rest). Every per-event key carries the event's `{hash tag}`, so each Lua script and pipeline
  touches one slot and runs unchanged on a cluster.
- the *RQ* connection (payment and expiry jobs): RQ is not cluster-aware (its queues and
  registries span many keys without a common tag), so it lives on its own single Redis,
  RQ_REDIS_URL (default: REDIS_URL, which must then not be a cluster).

REDIS_KEY_PREFIX isolates deployments (or test runs) that share one cluster: a cluster has only
db 0, so the prefix plays the role a db number plays on a single Redis.
"""

from __future__ import annotations

from typing import cast

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from booking.redis_bounded import BoundedRedisCluster
from booking.settings import Settings

# A cluster call rides through a failover (node timeout + replica election) instead of failing
# the request. Commands back off 0.25 s doubling to 1 s (about 30 s in all); redis-py retries
# pipelines every 0.25 s with the same count (about 8 s): enough for a 3 s node timeout (the
# tests'); with Redis's default 15 s a pipeline during a failover answers 503 + Retry-After.
CLUSTER_RETRY = Retry(ExponentialWithJitterBackoff(base=0.25, cap=1.0), retries=32)
POOL_TIMEOUT_SECONDS = 10


def rq_redis_url(settings: Settings) -> str:
    """RQ's Redis: RQ_REDIS_URL, or REDIS_URL when unset."""
    return settings.rq_redis_url or settings.redis_url


def build_state_redis(
    settings: Settings,
    *,
    max_connections: int | None = None,
    connect_timeout: float | None = None,
) -> aioredis.Redis:
    """The asyncio client for the waiting room, the seat cache and the rate limits.

    On a cluster this is a `RedisCluster`, typed as `Redis` because every caller uses only the
    commands both share (single-slot scripts, pipelines and plain commands).
    """
    limit = max_connections or settings.redis_max_connections
    if settings.redis_cluster:
        # Waits for a free connection at `limit` in-flight calls, as the pool below does.
        cluster = BoundedRedisCluster.from_url(
            settings.redis_url,
            max_in_flight=limit,
            socket_connect_timeout=connect_timeout,
            retry=CLUSTER_RETRY,
        )
        return cast(aioredis.Redis, cluster)
    # A blocking pool makes a surge wait for a free connection instead of failing with 500s.
    return aioredis.Redis(
        connection_pool=aioredis.BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=limit,
            timeout=POOL_TIMEOUT_SECONDS,
            socket_connect_timeout=connect_timeout,
        )
    )


async def close_state_redis(client: aioredis.Redis) -> None:
    """Close a client from build_state_redis and every connection it opened."""
    await client.aclose()
    if not is_cluster(client):
        await client.connection_pool.disconnect()  # a pool we passed in ourselves


def is_cluster(client: object) -> bool:
    return isinstance(client, RedisCluster)


def build_rq_redis(settings: Settings) -> redis.Redis:
    """The synchronous connection RQ's queue and workers use."""
    return redis.Redis.from_url(rq_redis_url(settings))
