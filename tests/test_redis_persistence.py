"""Redis with AOF (as compose runs it: appendonly yes, appendfsync everysec) crashes (SIGKILL)
and restarts: every waiting buyer keeps their exact position and every admitted buyer's
admission still verifies. The same crash without persistence loses both (docs/faults.md)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from tests.faults import OwnRedis, record_result
from waitingroom import RoomConfig, WaitingRoom

pytestmark = pytest.mark.faults

SECRET = "persistence-test-secret-of-32-bytes-at-least"
BUYERS = 12
ADMITTED = 4
FSYNC_WAIT_SECONDS = 10.0


def wait_aof_flushed(port: int) -> None:
    """Hang-guarded wait until Redis has written its AOF buffer and no fsync is pending."""
    client = redis.Redis(port=port)
    deadline = time.monotonic() + FSYNC_WAIT_SECONDS
    try:
        while True:
            info = client.info("persistence")
            if info["aof_buffer_length"] == 0 and info["aof_pending_bio_fsync"] == 0:
                return
            assert time.monotonic() < deadline, "AOF never flushed"
            time.sleep(0.05)
    finally:
        client.close()


async def snapshot(
    server: OwnRedis,
    config: RoomConfig,
    tickets: dict[str, str],
    now: float,
    held_tokens: dict[str, str] | None = None,
) -> tuple[dict[str, int | None], dict[str, bool]]:
    """(position of every waiting buyer, does each admitted buyer's token verify: the one held
    from before the crash when given, else the one this poll issues)."""
    client = aioredis.Redis.from_url(server.url())
    room = WaitingRoom(client, SECRET, clock=lambda: now, batch=False)
    positions: dict[str, int | None] = {}
    admitted: dict[str, bool] = {}
    issued.clear()
    try:
        for user, ticket in tickets.items():
            result = await room.poll(config, ticket)
            if result.status == "admitted":
                assert result.admission_token is not None
                token = (held_tokens or {}).get(user, result.admission_token)
                admitted[user] = await room.verify_token(token, user, config.event_id)
                issued[user] = result.admission_token
            else:
                positions[user] = result.position
    finally:
        await client.aclose()
    return positions, admitted


issued: dict[str, str] = {}  # the admission tokens the last snapshot's polls handed out


async def fill_room(server: OwnRedis, config: RoomConfig, now: float) -> dict[str, str]:
    client = aioredis.Redis.from_url(server.url())
    room = WaitingRoom(client, SECRET, clock=lambda: now, batch=False)
    try:
        tickets = {}
        for i in range(BUYERS):
            tickets[f"u{i}"] = (await room.join(config, f"u{i}")).ticket
        admitted = await room.admit_tick(config, now=now)
        assert len(admitted) == ADMITTED
    finally:
        await client.aclose()
    return tickets


@pytest.mark.parametrize("appendonly", [True, False], ids=["aof", "no-persistence"])
async def test_positions_and_admissions_after_a_redis_crash(
    tmp_path: Path, appendonly: bool
) -> None:
    server = OwnRedis(tmp_path, appendonly=appendonly)
    server.start()
    config = RoomConfig(
        event_id="persist",
        enabled=True,
        admit_per_second=ADMITTED,
        max_active=100,
        admission_window_seconds=600,
    )
    now = time.time()  # fixed: tokens and admissions are judged at this instant
    try:
        tickets = await fill_room(server, config, now)
        before = await snapshot(server, config, tickets, now + 1)
        assert len(before[1]) == ADMITTED and all(before[1].values())
        assert sorted(p for p in before[0].values() if p is not None) == list(
            range(1, BUYERS - ADMITTED + 1)
        )
        if appendonly:
            wait_aof_flushed(server.port)
        server.kill()
        server.start()
        if appendonly:
            held = dict(issued)
            after = await snapshot(server, config, tickets, now + 2, held_tokens=held)
            assert after == before  # same positions; the tokens from before still verify
            record_result(
                "redis_crash_with_aof",
                waiting=len(after[0]),
                positions_kept=sum(after[0][u] == before[0][u] for u in before[0]),
                admitted=len(after[1]),
                admissions_still_valid=sum(after[1].values()),
            )
        else:
            client = redis.Redis(port=server.port)
            assert client.dbsize() == 0  # every position and admission is gone
            client.close()
            record_result(
                "redis_crash_without_persistence",
                waiting_before=len(before[0]),
                admitted_before=len(before[1]),
                keys_after_restart=0,
            )
    finally:
        server.kill()
