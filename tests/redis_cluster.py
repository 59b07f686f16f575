"""A real Redis Cluster for tests: Debian's redis-server nodes on loopback, joined by redis-cli.

3 masters, each with one replica (6 processes). Started once per session by the `redis_cluster`
fixture (tests/cluster_fixtures.py), stopped by PID. Each node's cluster bus is its port + 10000.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from booking.redis_bounded import BoundedRedisCluster
from booking.redis_clients import close_state_redis

# Our own range (the machine's shared Redis is on 6379; other test groups use other ports).
# TEST_REDIS_CLUSTER_BASE_PORT moves it, so two checkouts can run the cluster tests side by side.
_BASE_PORT = int(os.environ.get("TEST_REDIS_CLUSTER_BASE_PORT", "7101"))
CLUSTER_PORTS = tuple(range(_BASE_PORT, _BASE_PORT + 6))
# How long a master may be silent before its replica takes over. Long enough that a busy CI box
# does not fail nodes over by accident, short enough for the failover test.
NODE_TIMEOUT_MS = 3000
START_DEADLINE_SECONDS = 30.0

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


@dataclass
class RedisClusterNodes:
    """The running nodes, by port; `url` names one node (clients discover the rest)."""

    workdir: Path
    ports: tuple[int, ...]
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def start_node(self, port: int) -> None:
        node_dir = self.workdir / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        self.procs[port] = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                str(NODE_TIMEOUT_MS),
                "--dir",
                str(node_dir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                str(node_dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: self._pings(port), f"redis node {port} did not start")

    def _pings(self, port: int) -> bool:
        try:
            with self.node(port) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def create(self) -> None:
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=START_DEADLINE_SECONDS,
        )
        wait_until(self.healthy, "the Redis Cluster did not reach state ok")

    def healthy(self) -> bool:
        """Every live node says cluster_state:ok and sees 3 masters covering all slots."""
        for port, proc in self.procs.items():
            if proc.poll() is not None:
                continue
            try:
                with self.node(port) as client:
                    info = client.execute_command("CLUSTER INFO")
            except redis.RedisError:
                return False
            if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != "16384":
                return False
        return len(self.masters()) == 3

    def roles(self) -> dict[int, str]:
        """port -> "master" | "replica" of the nodes not marked failed, as a live node sees them."""
        live = [p for p, proc in self.procs.items() if proc.poll() is None]
        with self.node(live[0]) as client:
            nodes = client.execute_command("CLUSTER NODES")
        roles: dict[int, str] = {}
        for addr, node in nodes.items():
            flags = node["flags"].split(",")
            if "fail" in flags:
                continue
            port = int(addr.split("@")[0].rsplit(":", 1)[1])
            roles[port] = "master" if "master" in flags else "replica"
        return roles

    def masters(self) -> list[int]:
        return sorted(p for p, role in self.roles().items() if role == "master")

    def master_of_key(self, key: str) -> int:
        """The port of the master serving `key`'s slot."""
        with self.node(self.masters()[0]) as client:
            slot = int(client.execute_command("CLUSTER KEYSLOT", key))
            ranges = client.execute_command("CLUSTER SLOTS")
        for start, end, primary, *_ in ranges:
            if int(start) <= slot <= int(end):
                return int(primary[1])
        raise LookupError(slot)

    def flush(self) -> None:
        """Empty every master (this session's own cluster: the test isolation of db 0)."""
        for port in self.masters():
            with self.node(port) as client:
                client.flushall()

    def kill(self, port: int) -> None:
        """SIGKILL a node: no chance to hand over, as when its machine dies."""
        proc = self.procs[port]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_until(check: object, message: str, deadline: float = START_DEADLINE_SECONDS) -> None:
    assert callable(check)
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(message)


def start_cluster(workdir: Path, ports: tuple[int, ...] = CLUSTER_PORTS) -> RedisClusterNodes:
    nodes = RedisClusterNodes(workdir, ports)
    try:
        for port in ports:
            nodes.start_node(port)
        nodes.create()
    except BaseException:
        nodes.stop()
        raise
    return nodes


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
