"""The waiting room and seat cache on a real Redis Cluster: where events land, key-prefix
isolation, and what a master failover costs an admitted and a waiting buyer.

The cluster is the session's (tests/cluster_fixtures.py): 3 masters, each with a replica.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis
from redis.crc import key_slot

from booking.cache import build_seat_cache, seat_map_key
from booking.redis_clients import build_state_redis, close_state_redis
from booking.settings import load_settings
from tests.redis_cluster import NODE_TIMEOUT_MS, RedisClusterNodes, wait_until
from waitingroom import RoomConfig, WaitingRoom
from waitingroom.keys import RoomKeys

pytest_plugins = ["tests.cluster_fixtures"]
pytestmark = pytest.mark.cluster

SECRET = "cluster-test-secret-of-sufficient-length"
EVENTS = [str(i) for i in range(1, 31)]
# Set to a directory (docs/results) to keep what these tests saw: cluster_spread.md (event →
# master) and cluster_failover.md.
RESULTS_DIR = os.environ.get("TEST_RESULTS_DIR")
FAILOVER_DEADLINE_SECONDS = 30.0


def config(event_id: str, max_active: int = 100, aps: int = 3) -> RoomConfig:
    return RoomConfig(
        event_id=event_id,
        enabled=True,
        admit_per_second=aps,
        max_active=max_active,
        admission_window_seconds=600,
        sale_opens_at=datetime(2020, 1, 1, tzinfo=UTC),
    )


@pytest.fixture
async def state_redis(redis_cluster: RedisClusterNodes) -> AsyncIterator[Redis]:
    """The app's own cluster client (booking.redis_clients), on an emptied cluster."""
    settings = load_settings(redis_cluster=True, redis_url=redis_cluster.url)
    client = build_state_redis(settings, max_connections=32)
    await client.flushdb()
    yield client
    await close_state_redis(client)


def keys_of_event(event_id: str, prefix: str = "") -> list[str]:
    seat_map = prefix + seat_map_key(event_id)
    return [*RoomKeys(event_id, prefix).all_static(), seat_map, seat_map + ":inv"]


async def test_events_spread_over_every_master_and_each_event_stays_on_one(
    redis_cluster: RedisClusterNodes, state_redis: Redis
) -> None:
    room = WaitingRoom(state_redis, SECRET)
    settings = load_settings(redis_cluster=True, seat_cache_strategy="lock")
    cache = build_seat_cache(settings, state_redis)
    try:
        for eid in EVENTS:
            await room.join(config(eid), "buyer-1")
            await room.admit_tick(config(eid), now=time.time())
            await cache.get(seat_map_key(eid), lambda: asyncio.sleep(0, b"[]"))
            await cache.invalidate(seat_map_key(eid))
    finally:
        await cache.aclose()
    where: dict[str, int] = {}
    for eid in EVENTS:
        masters = {redis_cluster.master_of_key(k) for k in keys_of_event(eid)}
        assert len(masters) == 1, f"event {eid}'s keys span masters {masters}"
        where[eid] = masters.pop()
        # The keys really are on that master (not just hashed there): ask the node itself.
        with redis_cluster.node(where[eid]) as node:
            assert node.exists(RoomKeys(eid).users, RoomKeys(eid).active) == 2
    per_master = Counter(where.values())
    assert set(per_master) == set(redis_cluster.masters()), per_master
    table = ["| event | hash slot | master |", "|---|---|---|"]
    with redis_cluster.node(redis_cluster.masters()[0]) as node:
        for eid in EVENTS:
            slot = node.execute_command("CLUSTER KEYSLOT", RoomKeys(eid).queue)
            table.append(f"| {eid} | {slot} | 127.0.0.1:{where[eid]} |")
    summary = ", ".join(f"127.0.0.1:{p}: {n} events" for p, n in sorted(per_master.items()))
    text = "\n".join([f"Events 1-{len(EVENTS)} on 3 masters: {summary}", "", *table, ""])
    print(text)
    write_result("cluster_spread.md", "Which master each event's keys land on", text)


def write_result(name: str, title: str, text: str) -> None:
    if RESULTS_DIR:
        header = f"# {title}\n\nWritten by tests/test_redis_cluster.py (TEST_RESULTS_DIR set).\n\n"
        (Path(RESULTS_DIR) / name).write_text(header + text)


async def test_key_prefixes_isolate_two_deployments_on_one_cluster(state_redis: Redis) -> None:
    blue = WaitingRoom(state_redis, SECRET, key_prefix="blue:")
    green = WaitingRoom(state_redis, SECRET, key_prefix="green:")
    cfg = config("7")
    for i in range(3):
        await blue.join(cfg, f"b{i}")
    ticket = await green.join(cfg, "g0")
    assert ticket.position == 1  # green's queue does not see blue's three
    assert await state_redis.zcard(RoomKeys("7", "blue:").queue) == 3
    assert await state_redis.zcard(RoomKeys("7", "green:").queue) == 1
    assert not await state_redis.exists(RoomKeys("7").queue)
    # A prefix keeps the hash tag: the event's keys share one slot whatever the prefix.
    slots = {
        key_slot(k.encode())
        for k in [RoomKeys("7", "blue:").queue, RoomKeys("7", "green:").users, "{7}"]
    }
    assert len(slots) == 1
    # Token revocations are published per deployment too.
    assert blue.revocation_channel != green.revocation_channel
    with pytest.raises(ValueError):
        RoomKeys("7", "bad{prefix}:")


async def test_failover_keeps_admitted_and_waiting_buyers(
    redis_cluster: RedisClusterNodes, state_redis: Redis
) -> None:
    """Kill (SIGKILL) the master serving an event; its replica takes over.

    What survives is what reached the replica before the crash (Redis replicates
    asynchronously; WAIT makes sure here that everything did): the admitted buyer's admission
    (the token still verifies) and the waiting buyer's ticket and place. During the failover the
    client retries (booking.redis_clients.CLUSTER_RETRY), so the calls made meanwhile succeed.
    """
    eid = "11"
    cfg = config(eid, max_active=2, aps=2)
    victim = redis_cluster.master_of_key(RoomKeys(eid).queue)
    room = WaitingRoom(state_redis, SECRET, rng=random.Random(3))
    tickets = {u: (await room.join(cfg, u)).ticket for u in ("a1", "a2", "w1", "w2")}
    assert await room.admit_tick(cfg, now=time.time()) == ["a1", "a2"]
    admitted = await room.poll(cfg, tickets["a1"])
    assert admitted.status == "admitted" and admitted.admission_token
    waiting_before = await room.poll(cfg, tickets["w2"])
    assert waiting_before.status == "waiting" and waiting_before.position == 2
    with redis_cluster.node(victim) as master:
        assert master.execute_command("WAIT", 1, 5000) == 1  # the replica has every write

    redis_cluster.kill(victim)
    killed_at = time.monotonic()
    try:
        # Calls during the failover wait for the promoted replica (client retries).
        assert await room.verify_token(admitted.admission_token, "a1", eid)
        waiting_after = await room.poll(cfg, tickets["w2"])
        recovered = time.monotonic() - killed_at
        assert waiting_after.status == "waiting" and waiting_after.position == 2
        assert (await room.poll(cfg, tickets["w1"])).position == 1
        # The room keeps working on the new master: the next tick admits after a slot frees.
        assert await room.complete(cfg, "a1")
        assert await room.admit_tick(cfg, now=time.time() + 1) == ["w1"]
        assert victim not in redis_cluster.masters()
        print(f"failover: state back after {recovered:.1f} s (node timeout 3 s)")
        assert recovered < FAILOVER_DEADLINE_SECONDS
        write_result(
            "cluster_failover.md",
            "Redis Cluster failover: a master killed with SIGKILL",
            f"- killed master 127.0.0.1:{victim} (event {eid}'s slot); its replica took over\n"
            f"- first call after the kill answered after {recovered:.1f} s"
            f" (cluster-node-timeout {NODE_TIMEOUT_MS} ms; the client retried meanwhile)\n"
            "- admitted buyer: admission token still verifies; waiting buyers: same tickets,"
            " positions 1 and 2 unchanged; the next tick admitted the next in line\n"
            "- everything had replicated before the kill (WAIT 1 returned 1)\n",
        )
    finally:
        # Bring the killed node back: it rejoins as a replica of the promoted master.
        redis_cluster.start_node(victim)
        wait_until(lambda: _has_replicas(redis_cluster), "the restarted node did not rejoin", 60)


def _has_replicas(nodes: RedisClusterNodes) -> bool:
    try:
        return nodes.healthy() and Counter(nodes.roles().values())["replica"] == 3
    except redis.RedisError:
        return False
