"""The service's distributed parts under the swarm: Redis (one server or a real Redis Cluster
with RQ on its own single redis-server) and, optionally, nginx in front of the web processes.

Built on ops/redis_cluster.py and ops/nginx_proc.py (the same starters the tests use). Every
process here is a child of the runner, in a temporary directory, stopped by PID.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.cluster import RedisCluster

from ops.nginx_proc import NginxProxy, find_nginx, start_nginx
from ops.processes import stop_processes
from ops.redis_cluster import (
    RedisClusterNodes,
    free_cluster_ports,
    start_cluster,
    start_single_redis,
)
from waitingroom.keys import RoomKeys

KEY_PREFIX = "swarm:"  # a cluster has only db 0: this deployment's keys carry a prefix
NGINX_WORKERS = 2
UPSTREAM_KEEPALIVE = 64  # idle connections nginx keeps to each web process


@dataclass
class RedisLayout:
    """Where the service keeps its state (REDIS_URL) and its job queue (RQ_REDIS_URL)."""

    url: str
    rq_url: str = ""  # "": RQ on `url` (one Redis)
    key_prefix: str = ""
    cluster: RedisClusterNodes | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {
            "REDIS_URL": self.url,
            "REDIS_CLUSTER": "1" if self.cluster else "0",
            "RQ_REDIS_URL": self.rq_url,
            "REDIS_KEY_PREFIX": self.key_prefix,
        }

    def client(self) -> Any:
        """A synchronous client of the state Redis (a cluster client for the cluster)."""
        if self.cluster is not None:
            return RedisCluster.from_url(self.url, socket_timeout=10)
        return redis.Redis.from_url(self.url, socket_timeout=10)

    def room_keys(self, event_id: int) -> RoomKeys:
        return RoomKeys(str(event_id), self.key_prefix)

    def pids(self) -> dict[str, list[int]]:
        """Process ids by role, for the CPU figures (empty for a Redis we did not start)."""
        if self.cluster is None:
            return {}
        roles = self.cluster.roles()
        return {
            "redis_cluster_masters": [
                self.cluster.procs[p].pid for p, r in roles.items() if r == "master"
            ],
            "redis_cluster_replicas": [
                self.cluster.procs[p].pid for p, r in roles.items() if r == "replica"
            ],
            "redis_rq": [p.pid for p in self.procs],
        }

    def spread(self, event_ids: list[int]) -> dict[str, Any]:
        """How the run's state spread over the masters: each event's hash-tag slot and master,
        and the keys each master holds."""
        if self.cluster is None:
            return {}
        events = []
        for eid in event_ids:
            key = self.room_keys(eid).seq
            events.append(
                {
                    "event_id": eid,
                    "key": key,
                    "slot": self.cluster.keyslot(key),
                    "master_port": self.cluster.master_of_key(key),
                }
            )
        return {
            "events": events,
            "keys_per_master": {str(p): n for p, n in self.cluster.keys_per_master().items()},
        }

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
        stop_processes(self.procs)


def single_redis(url: str) -> RedisLayout:
    """The service on one existing Redis (emptied by the service's start)."""
    return RedisLayout(url=url)


def redis_cluster(base_port: int | None) -> RedisLayout:
    """A fresh 3-master + 3-replica cluster on base_port..base_port+5 (None: free ports) and
    RQ's own redis-server on the next port."""
    workdir = Path(tempfile.mkdtemp(prefix="swarm-redis-"))
    ports = free_cluster_ports(7) if base_port is None else tuple(range(base_port, base_port + 7))
    nodes = start_cluster(workdir, ports[:6])
    try:
        rq_port = ports[6]
        rq = start_single_redis(workdir, rq_port)
    except BaseException:
        nodes.stop()
        raise
    return RedisLayout(
        url=nodes.url,
        rq_url=f"redis://127.0.0.1:{rq_port}/0",
        key_prefix=KEY_PREFIX,
        cluster=nodes,
        procs=[rq],
    )


def nginx_in_front(port: int, web_ports: list[int], buyers: int) -> NginxProxy:
    """nginx balancing `web_ports`, sized for every buyer holding a keep-alive connection."""
    binary = find_nginx()
    if binary is None:
        raise RuntimeError("--nginx needs nginx (Debian: apt install nginx)")
    return start_nginx(
        binary,
        Path(tempfile.mkdtemp(prefix="swarm-nginx-")),
        port,
        web_ports,
        worker_processes=NGINX_WORKERS,
        # Per worker: its share of the buyers' connections (uneven) plus upstream ones.
        worker_connections=buyers + 2048,
        upstream_keepalive=UPSTREAM_KEEPALIVE,
        access_log=False,
    )
