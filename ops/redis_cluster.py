"""A real Redis Cluster on loopback: Debian's redis-server nodes joined by redis-cli.

3 masters, each with one replica (6 processes), every node a child process of the caller and
stopped by PID. Each node's cluster bus is its port + 10000. Used by the tests (through
tests/redis_cluster.py) and by the distributed surge (`python -m load.swarm --redis-cluster`);
`start_single_redis` is the plain redis-server beside it for RQ, which is not cluster-aware.
"""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from ops.processes import stop_processes

# How long a master may be silent before its replica takes over. Long enough that a busy box
# does not fail nodes over by accident, short enough for the failover test.
NODE_TIMEOUT_MS = 3000
START_DEADLINE_SECONDS = 30.0
MASTERS = 3


def wait_until(
    check: Callable[[], bool], message: str, deadline: float = START_DEADLINE_SECONDS
) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(message)


def _pings(port: int) -> bool:
    try:
        with redis.Redis(host="127.0.0.1", port=port, socket_timeout=5) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False


def _redis_server(port: int, node_dir: Path, *extra: str) -> subprocess.Popen[bytes]:
    node_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", str(node_dir),
            "--save", "",
            "--appendonly", "no",
            "--logfile", str(node_dir / "redis.log"),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def up() -> bool:
        # Our process must be the one answering: another's server on the port would ping too.
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server on port {port} exited (port taken?): {node_dir}")
        return _pings(port)

    wait_until(up, f"redis-server on port {port} did not start")
    return proc


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
        self.procs[port] = _redis_server(
            port,
            self.workdir / str(port),
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
        )  # fmt: skip

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
        return len(self.masters()) == MASTERS

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

    def keyslot(self, key: str) -> int:
        with self.node(self.masters()[0]) as client:
            return int(client.execute_command("CLUSTER KEYSLOT", key))

    def master_of_key(self, key: str) -> int:
        """The port of the master serving `key`'s slot."""
        slot = self.keyslot(key)
        with self.node(self.masters()[0]) as client:
            ranges = client.execute_command("CLUSTER SLOTS")
        for start, end, primary, *_ in ranges:
            if int(start) <= slot <= int(end):
                return int(primary[1])
        raise LookupError(slot)

    def keys_per_master(self) -> dict[int, int]:
        """port -> DBSIZE of each master: how the data spread."""
        out = {}
        for port in self.masters():
            with self.node(port) as client:
                out[port] = int(client.dbsize())
        return out

    def flush(self) -> None:
        """Empty every master (this cluster's own data only)."""
        for port in self.masters():
            with self.node(port) as client:
                client.flushall()

    def kill(self, port: int) -> None:
        """SIGKILL a node: no chance to hand over, as when its machine dies."""
        proc = self.procs[port]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self) -> None:
        stop_processes(list(self.procs.values()))


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_ports(
    count: int = 2 * MASTERS, low: int = 20000, high: int = 30000
) -> tuple[int, ...]:
    """`count` consecutive loopback ports whose cluster-bus ports (+10000) are free as well,
    from a random start in [low, high): clear of other users' fixed ranges."""
    for _ in range(200):
        start = random.randrange(low, high - count)
        ports = tuple(range(start, start + count))
        if all(_free(p) and _free(p + 10000) for p in ports):
            return ports
    raise RuntimeError(f"no {count} free consecutive ports in [{low}, {high})")


def start_cluster(workdir: Path, ports: tuple[int, ...]) -> RedisClusterNodes:
    """Six nodes on `ports` (3 masters + 3 replicas), joined and healthy; stopped on failure."""
    if len(ports) != 2 * MASTERS:
        raise ValueError(f"a cluster of {MASTERS} masters with one replica each needs 6 ports")
    nodes = RedisClusterNodes(workdir, ports)
    try:
        for port in ports:
            nodes.start_node(port)
        nodes.create()
    except BaseException:
        nodes.stop()
        raise
    return nodes


def start_single_redis(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """A plain (non-cluster) redis-server on loopback `port`, for RQ beside the cluster."""
    return _redis_server(port, workdir / f"single-{port}")
