"""Polls from process memory (QueueView) and the chunked pre-queue opening, against real Redis.

Two WaitingRoom objects on one Redis play two web processes: `other` changes the queue (its
admitter, buyers leaving through it), `view` answers polls. The view's clock is injected, so
"exact as of at most max_age ago" is checked without depending on the machine's speed.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.test_waitingroom import REDIS_URL, SECRET, FakeClock, cfg, members
from waitingroom import PollRateLimited, UnknownTicket, WaitingRoom
from waitingroom import queue as q
from waitingroom.keys import RoomKeys
from waitingroom.view import QueueView

T0 = 1_800_000_000.0


class Mono:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


def rooms(redis: Redis, clock: FakeClock, chunk: int = 2000) -> tuple[WaitingRoom, WaitingRoom]:
    """(this process's room, another process's room) on the same Redis."""
    mine = WaitingRoom(redis, SECRET, clock=clock, rng=random.Random(7), opening_chunk=chunk)
    other = WaitingRoom(redis, SECRET, clock=clock, rng=random.Random(8), opening_chunk=chunk)
    return mine, other


Places = dict[str, int | str | None]  # position, None (not waiting) or "unknown"


async def exact_positions(room: WaitingRoom, config_id: str, tickets: dict[str, str]) -> Places:
    config = cfg(config_id, aps=3, max_active=1000)
    out: Places = {}
    for user, ticket in tickets.items():
        try:
            out[user] = (await room.poll(config, ticket)).position
        except UnknownTicket:
            out[user] = "unknown"
    return out


async def view_positions(view: QueueView, config_id: str, tickets: dict[str, str]) -> Places:
    config = cfg(config_id, aps=3, max_active=1000)
    out: Places = {}
    for user, ticket in tickets.items():
        try:
            out[user] = (await view.poll(config, ticket)).position
        except UnknownTicket:
            out[user] = "unknown"
    return out


async def test_positions_are_exact_as_of_at_most_max_age_ago_after_leaves_and_admissions(
    redis: Redis,
) -> None:
    clock, mono = FakeClock(T0), Mono()
    mine, other = rooms(redis, clock)
    # A poll limit that these repeated checks never reach.
    mine.poll_limit_per_second = other.poll_limit_per_second = 1000
    view = QueueView(mine, refresh_seconds=0.25, max_age_seconds=1.0, monotonic=mono)
    config = cfg("80", aps=3, max_active=1000)
    tickets = {f"u{i}": (await view.join(config, f"u{i}")).ticket for i in range(12)}
    # First polls go to Redis (exact) and teach the view every ticket's score.
    assert await view_positions(view, "80", tickets) == {f"u{i}": i + 1 for i in range(12)}

    memory_before = await view_positions(view, "80", tickets)
    # Another process: two buyers leave, one tick admits three (u0..u2).
    assert await other.leave(config, "u4") and await other.leave(config, "u9")
    assert await other.admit_tick(config) == ["u0", "u1", "u2"]
    exact_now = await exact_positions(other, "80", tickets)
    assert exact_now["u3"] == 1 and exact_now["u5"] == 2 and exact_now["u11"] == 7

    # Within the bound the view may still answer as of before the change, never anything else.
    mono.t += 0.5
    stale_or_fresh = await view_positions(view, "80", tickets)
    for user in tickets:
        if exact_now[user] not in (None, "unknown"):
            assert stale_or_fresh[user] in (memory_before[user], exact_now[user])

    # Past max_age the view must wait for a fresh snapshot: exact again.
    mono.t += 1.0
    after = await view_positions(view, "80", tickets)
    for user in ("u3", "u5", "u6", "u7", "u8", "u10", "u11"):
        assert after[user] == exact_now[user]
    assert after["u4"] == after["u9"] == "unknown"  # their tickets left with them
    admitted = await view.poll(config, tickets["u0"])
    assert admitted.status == "admitted" and admitted.admission_token


async def test_changes_made_in_this_process_are_seen_at_once(redis: Redis) -> None:
    clock, mono = FakeClock(T0), Mono()
    mine, _ = rooms(redis, clock)
    mine.poll_limit_per_second = 1000
    view = QueueView(mine, refresh_seconds=0.25, max_age_seconds=1.0, monotonic=mono)
    config = cfg("81", aps=2, max_active=1000)
    tickets = {f"u{i}": (await view.join(config, f"u{i}")).ticket for i in range(6)}
    await view_positions(view, "81", tickets)
    assert await mine.leave(config, "u1")
    assert (await view.poll(config, tickets["u2"])).position == 1 + 1  # u0, then u2
    assert await mine.admit_tick(config) == ["u0", "u2"]
    assert await view_positions(view, "81", tickets) == {
        "u0": None,  # admitted
        "u1": "unknown",
        "u2": None,
        "u3": 1,
        "u4": 2,
        "u5": 3,
    }
    # The memory path counts polls per process: the third poll in one second is refused.
    mine.poll_limit_per_second = 2
    mono.t = float(int(mono.t) + 1)
    assert (await view.poll(config, tickets["u5"])).position == 3
    assert (await view.poll(config, tickets["u5"])).position == 3
    with pytest.raises(PollRateLimited):
        await view.poll(config, tickets["u5"])


async def test_memory_path_matches_a_fifo_model_under_random_joins_leaves_and_ticks(
    redis: Redis,
) -> None:
    clock, mono = FakeClock(T0), Mono()
    mine, other = rooms(redis, clock)
    mine.poll_limit_per_second = other.poll_limit_per_second = 10_000
    view = QueueView(mine, monotonic=mono)
    config = cfg("82", aps=3, max_active=10_000)
    rng = random.Random(82)
    waiting: list[str] = []
    tickets: dict[str, str] = {}
    for step in range(150):
        op = rng.random()
        user = f"u{rng.randrange(40)}"
        if op < 0.5:
            ticket = await other.join(config, user)
            if user not in tickets or user in waiting:
                tickets[user] = ticket.ticket
            if user not in waiting and ticket.status == "waiting":
                waiting.append(user)
        elif op < 0.75:
            await other.leave(config, user)
            if user in waiting:
                waiting.remove(user)
            tickets.pop(user, None)
        else:
            admitted = await other.admit_tick(config)
            assert admitted == waiting[:3]
            del waiting[:3]
            for u in admitted:
                tickets.pop(u, None)
            clock.t += 1
        if step % 10 == 9:
            mono.t += 2.0  # older than max_age: the next poll sees a fresh snapshot
            for i, u in enumerate(waiting):
                assert (await view.poll(config, tickets[u])).position == i + 1


async def test_prequeue_moves_in_chunks_keeping_exact_fifo_and_positions(redis: Redis) -> None:
    clock, mono = FakeClock(T0), Mono()
    mine, other = rooms(redis, clock, chunk=3)
    mine.poll_limit_per_second = 10_000
    view = QueueView(mine, monotonic=mono)
    config = cfg("83", aps=2, max_active=1000, opens_at=T0 + 60)
    keys = RoomKeys("83")
    early = {f"e{i:02d}": (await other.join(config, f"e{i:02d}")).ticket for i in range(20)}
    draw = await members(redis, keys.pre)  # the order drawn
    clock.t = T0 + 61
    # Open by hand, one chunk of 3 at a time, with arrivals and departures in between.
    moved, left = await q.open_step(
        other._scripts, keys, now_ms=int(clock.t * 1000), opens_at_ms=config.opens_at_ms(), chunk=3
    )
    assert (moved, left) == (3, 17)
    # The join script alone (WaitingRoom.join would finish the move at once).
    late = await q.join(
        other._scripts,
        keys,
        user_id="late0",
        new_ticket="late0-ticket",
        now_ms=int(clock.t * 1000),
        opens_at_ms=config.opens_at_ms(),
        pre_key=0,
        admit_per_second=2,
    )
    assert late.position == 21 and late.opening
    gone_pre, gone_moved = draw[10], draw[1]
    assert await other.leave(config, gone_pre) and await other.leave(config, gone_moved)
    expected = [u for u in draw if u not in (gone_pre, gone_moved)] + ["late0"]
    # Positions are exact while the move is half done: from Redis and from the snapshot.
    assert (await mine.poll(config, late.ticket)).position == len(expected)
    mono.t += 2
    assert (await view.poll(config, late.ticket)).position == len(expected)  # exact path
    mono.t += 2
    assert (await view.poll(config, late.ticket)).position == len(expected)  # memory path
    for _ in range(20):
        moved, left = await q.open_step(
            other._scripts,
            keys,
            now_ms=int(clock.t * 1000),
            opens_at_ms=config.opens_at_ms(),
            chunk=3,
        )
        if left == 0:
            break
    assert left == 0 and not await redis.exists(keys.pre) and not await redis.exists(keys.opening)
    assert await members(redis, keys.queue) == expected  # FIFO: the draw, then arrivals
    mono.t += 2
    for i, user in enumerate(expected[:-1]):
        ticket = early[user]
        assert (await view.poll(config, ticket)).position == i + 1  # first poll: exact path
        mono.t += 2
        assert (await view.poll(config, ticket)).position == i + 1  # memory path
    assert (await view.poll(config, late.ticket)).position == len(expected)
    admitted: list[str] = []
    for _ in range(12):
        admitted += await mine.admit_tick(config)
        clock.t += 1
    assert admitted == expected
