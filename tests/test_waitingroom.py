"""Waiting room against the real Redis (db 14 by default, flushed by these fixtures)."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from tests.redis_cluster import REDIS_BACKENDS, async_client, close_client
from waitingroom import RoomConfig, TokenRejected, WaitingRoom, run_admitter
from waitingroom.errors import JoinRefused
from waitingroom.keys import RoomKeys
from waitingroom.throttle import JoinGuard, join_counter_key, solution_key

# Own variable, not TEST_REDIS_URL: that one names the suite-wide db (conftest, live server),
# and these fixtures flush their db before every test.
REDIS_URL = os.environ.get("WAITINGROOM_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
SECRET = "test-admission-secret-of-sufficient-length"
T0 = 1_800_000_000.0

pytest_plugins = ["tests.cluster_fixtures"]


class FakeClock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def cfg(
    event_id: str = "1",
    *,
    aps: int = 5,
    max_active: int = 100,
    window: int = 30,
    opens_at: float | None = None,
    enabled: bool = True,
) -> RoomConfig:
    return RoomConfig(
        event_id=event_id,
        enabled=enabled,
        admit_per_second=aps,
        max_active=max_active,
        admission_window_seconds=window,
        sale_opens_at=None if opens_at is None else datetime.fromtimestamp(opens_at, UTC),
    )


@pytest.fixture(params=REDIS_BACKENDS)
async def redis(request: pytest.FixtureRequest) -> AsyncIterator[Redis]:
    client = async_client(request, REDIS_URL, max_connections=64)
    await client.flushdb()
    yield client
    await client.flushdb()
    await close_client(client)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def room(redis: Redis, clock: FakeClock) -> WaitingRoom:
    return WaitingRoom(redis, SECRET, clock=clock, rng=random.Random(1234), poll_limit_per_second=5)


async def members(redis: Redis, key: str) -> list[str]:
    raw: list[bytes] = await redis.zrange(key, 0, -1)  # type: ignore[assignment]
    return [m.decode() for m in raw]


async def members_with_scores(redis: Redis, key: str) -> list[tuple[str, float]]:
    raw: list[tuple[bytes, float]] = await redis.zrange(key, 0, -1, withscores=True)  # type: ignore[assignment]
    return [(m.decode(), score) for m, score in raw]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- joining -----------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "tenant-a:"])
async def test_guarded_join_counts_and_claims_in_the_join_script(
    redis: Redis, clock: FakeClock, prefix: str
) -> None:
    """The bot defence's checks run first inside the join script (one round trip, one slot
    on a cluster): a refused join queues nobody, a limited one does not burn its solution."""
    room = WaitingRoom(redis, SECRET, clock=clock, key_prefix=prefix)
    config = cfg("81")
    counter = join_counter_key("81", "198.51.100.7")

    def guard(solution: str | None = None) -> JoinGuard:
        return JoinGuard(counter, 2, solution, 5_000 if solution else 0)

    assert (await room.join(config, "u1", guard(solution_key("81", "c1")))).position == 1
    with pytest.raises(JoinRefused) as reused:
        await room.join(config, "u2", guard(solution_key("81", "c1")))
    assert reused.value.outcome == "reused"
    with pytest.raises(JoinRefused) as limited:
        await room.join(config, "u3", guard(solution_key("81", "c2")))
    assert limited.value.outcome == "limited"
    assert 0 < limited.value.retry_after_ms <= 60_000
    assert await members(redis, room.keys_for(config).queue) == ["u1"]
    assert await redis.exists(prefix + counter) == 1  # under the deployment's key prefix
    if prefix:
        assert await redis.exists(counter) == 0
    # The limited join did not spend c2: from another address it is still good.
    other = JoinGuard(join_counter_key("81", "198.51.100.8"), 2, solution_key("81", "c2"), 5_000)
    assert (await room.join(config, "u3", other)).position == 2
    assert (await room.join(config, "u4")).position == 3  # no guard: nothing checked


@pytest.mark.parametrize("batch", [True, False], ids=["pipelined", "direct"])
async def test_1000_concurrent_joins_get_positions_1_to_1000_and_rejoin_is_idempotent(
    redis: Redis, clock: FakeClock, batch: bool
) -> None:
    room = WaitingRoom(redis, SECRET, clock=clock, batch=batch)
    config = cfg("10")
    users = [f"u{i}" for i in range(1000)]
    random.Random(5).shuffle(users)
    first = await asyncio.gather(*(room.join(config, u) for u in users))

    assert sorted(t.position or 0 for t in first) == list(range(1, 1001))
    assert len({t.ticket for t in first}) == 1000
    assert all(t.status == "waiting" and t.created for t in first)
    # The queue order is the order of the positions handed out (strict FIFO, no swaps).
    by_position = [
        u for _, u in sorted((t.position or 0, u) for t, u in zip(first, users, strict=True))
    ]
    assert await members(redis, RoomKeys("10").queue) == by_position

    again = await asyncio.gather(*(room.join(config, u) for u in users))
    assert [(t.ticket, t.position) for t in again] == [(t.ticket, t.position) for t in first]
    assert not any(t.created for t in again)
    assert await redis.zcard(RoomKeys("10").queue) == 1000


async def test_poll_reports_exact_position_and_eta_from_fallback_rate(room: WaitingRoom) -> None:
    config = cfg("11", aps=4)
    tickets = [await room.join(config, f"u{i}") for i in range(10)]
    result = await room.poll(config, tickets[6].ticket)
    assert (result.status, result.position) == ("waiting", 7)
    # No admission measured yet: ETA uses admit_per_second.
    assert result.eta_seconds == math.ceil(7 / 4) == tickets[6].eta_seconds


async def test_leave_removes_user_and_later_users_move_up(room: WaitingRoom) -> None:
    config = cfg("12")
    tickets = [await room.join(config, f"u{i}") for i in range(4)]
    assert await room.leave(config, "u1") is True
    assert (await room.poll(config, tickets[3].ticket)).position == 3
    assert await room.leave(config, "u1") is False
    rejoined = await room.join(config, "u1")
    assert rejoined.ticket != tickets[1].ticket and rejoined.position == 4


# --- admission ---------------------------------------------------------------------------


async def test_admit_tick_respects_rate_cap_fifo_and_once_per_second(
    room: WaitingRoom, clock: FakeClock, redis: Redis
) -> None:
    config = cfg("20", aps=5, max_active=12)
    for i in range(30):
        await room.join(config, f"u{i:02d}")
    assert await room.admit_tick(config) == [f"u{i:02d}" for i in range(5)]
    # A second call within the same second (another process) admits nobody.
    assert await room.admit_tick(config, clock() + 0.5) == []
    clock.advance(1)
    assert await room.admit_tick(config) == [f"u{i:02d}" for i in range(5, 10)]
    clock.advance(1)
    assert await room.admit_tick(config) == ["u10", "u11"]  # capped by max_active=12
    clock.advance(1)
    assert await room.admit_tick(config) == []
    assert await redis.zcard(RoomKeys("20").active) == 12
    assert sample("waitingroom_active_users", event="20") == 12
    assert sample("waitingroom_queue_length", event="20") == 18


async def test_three_concurrent_admitters_never_exceed_rate_or_cap(
    redis: Redis, clock: FakeClock
) -> None:
    config = cfg("21", aps=7, max_active=40)
    rooms = [WaitingRoom(redis, SECRET, clock=clock) for _ in range(3)]
    for i in range(100):
        await rooms[i % 3].join(config, f"u{i:03d}")
    admitted: list[str] = []
    for _ in range(10):
        per_room = await asyncio.gather(*(r.admit_tick(config) for r in rooms))
        this_tick = [u for batch in per_room for u in batch]
        assert len(this_tick) <= config.admit_per_second
        assert sum(1 for batch in per_room if batch) <= 1  # only one process admits per tick
        admitted += this_tick
        assert await redis.zcard(RoomKeys("21").active) <= config.max_active
        clock.advance(1)
    assert admitted == [f"u{i:03d}" for i in range(40)]  # FIFO, no duplicates, capped


async def test_three_real_admitter_loops_admit_at_most_rate_per_second(redis: Redis) -> None:
    config = cfg("22", aps=3, max_active=100, window=60)
    rooms = [WaitingRoom(redis, SECRET) for _ in range(3)]
    for i in range(50):
        await rooms[0].join(config, f"u{i:02d}")

    async def configs() -> list[RoomConfig]:
        return [config, cfg("23", enabled=False)]

    stop = asyncio.Event()
    loops = [asyncio.create_task(run_admitter(r, configs, stop)) for r in rooms]
    await asyncio.sleep(2.3)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*loops), timeout=3)

    active = await members_with_scores(redis, RoomKeys("22").active)
    # Each admitted user's score is tick_time + window: group admissions by tick second.
    per_second = Counter(math.floor((score - 60_000) / 1000) for _, score in active)
    assert per_second and max(per_second.values()) <= 3
    assert len(per_second) <= 4  # ~3 ticks in 2.3 s, never one per loop
    assert sorted(m for m, _ in active) == [f"u{i:02d}" for i in range(len(active))]
    assert not await redis.exists(RoomKeys("23").tick)  # disabled events are not ticked


async def test_expired_admissions_are_dropped_and_slots_reused(
    room: WaitingRoom, clock: FakeClock
) -> None:
    config = cfg("24", aps=10, max_active=2, window=30)
    tickets = {u: await room.join(config, u) for u in ("a", "b", "c", "d")}
    assert await room.admit_tick(config) == ["a", "b"]
    assert (await room.join(config, "a")).status == "admitted"  # idempotent while admitted
    clock.advance(1)
    assert await room.admit_tick(config) == []  # full
    assert (await room.poll(config, tickets["c"].ticket)).position == 1
    clock.advance(30)
    before = sample("waitingroom_expired_total", event="24")
    assert await room.admit_tick(config) == ["c", "d"]
    assert sample("waitingroom_expired_total", event="24") == before + 2
    assert (await room.poll(config, tickets["a"].ticket)).status == "expired"
    again = await room.join(config, "a")  # starts over at the back with a new ticket
    assert again.ticket != tickets["a"].ticket and again.position == 1


async def test_complete_frees_the_slot_at_once(room: WaitingRoom, clock: FakeClock) -> None:
    config = cfg("25", aps=5, max_active=1)
    await room.join(config, "a")
    b = await room.join(config, "b")
    assert await room.admit_tick(config) == ["a"]
    assert await room.complete(config, "a") is True
    assert await room.redis.zcard(RoomKeys("25").active) == 0
    assert await room.complete("25", "a") is False
    clock.advance(1)
    assert await room.admit_tick(config) == ["b"]
    assert (await room.poll(config, b.ticket)).status == "admitted"


async def test_eta_follows_measured_rate_and_error_is_recorded(
    room: WaitingRoom, clock: FakeClock
) -> None:
    # max_active=2 and a window of 1 s: the room really drains 2/s, not admit_per_second=10.
    config = cfg("26", aps=10, max_active=2, window=1)
    tickets = [await room.join(config, f"u{i:02d}") for i in range(40)]
    count_before = sample("waitingroom_eta_error_seconds_count", event="26")
    for _ in range(6):
        await room.admit_tick(config)
        clock.advance(1.001)
    assert sample("waitingroom_eta_error_seconds_count", event="26") == count_before + 12
    result = await room.poll(config, tickets[-1].ticket)
    assert result.position == 40 - 12
    rate = float(await room.redis.hget(RoomKeys("26").rate, "ewma") or 0)
    assert rate == pytest.approx(2.0)
    assert result.eta_seconds == math.ceil(28 / 2)


# --- tokens ------------------------------------------------------------------------------


async def _admitted_token(room: WaitingRoom, config: RoomConfig, user: str) -> str:
    ticket = await room.join(config, user)
    await room.admit_tick(config)
    result = await room.poll(config, ticket.ticket)
    assert result.status == "admitted" and result.admission_token
    return result.admission_token


def _tamper(token: str, **changes: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    raw = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{raw}.{signature}"


async def test_tokens_valid_forged_expired_wrong_event_user_and_inactive(
    room: WaitingRoom, redis: Redis, clock: FakeClock
) -> None:
    config = cfg("30", aps=5, window=30)
    token = await _admitted_token(room, config, "alice")
    assert await room.verify_token(token, "alice", "30") is True
    assert await room.verify_token(token, "alice", 30) is True

    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["sub"], claims["evt"]) == ("alice", "30")

    other = WaitingRoom(redis, "another-secret-of-sufficient-length-xx", clock=clock)
    forged_wrong_secret = other.signer.issue("alice", "30", claims["jti"], int(T0 + 30) * 1000)
    cases = {
        "forged": [
            (forged_wrong_secret, "alice", "30"),
            (_tamper(token, sub="mallory"), "mallory", "30"),
            ("not-a-jwt", "alice", "30"),
            (jwt.encode(claims, SECRET * 2, algorithm="HS512"), "alice", "30"),
            # Algorithm confusion: an HMAC token naming our kid is still forged.
            (
                jwt.encode(
                    claims,
                    SECRET * 2,
                    algorithm="HS256",
                    headers={"kid": room.signer.keys.signer_kid},
                ),
                "alice",
                "30",
            ),
        ],
        "wrong_event": [(token, "alice", "31")],
        "wrong_user": [(token, "bob", "30")],
    }
    for reason, attempts in cases.items():
        for tok, user, event in attempts:
            before = sample("waitingroom_token_rejections_total", event=event, reason=reason)
            with pytest.raises(TokenRejected) as info:
                await room.verify_token(tok, user, event)
            assert info.value.reason == reason
            after = sample("waitingroom_token_rejections_total", event=event, reason=reason)
            assert after == before + 1

    clock.advance(31)
    with pytest.raises(TokenRejected) as info:
        await room.verify_token(token, "alice", "30")
    assert info.value.reason == "expired"


async def test_token_of_completed_or_superseded_admission_is_revoked(
    room: WaitingRoom, clock: FakeClock
) -> None:
    config = cfg("32", aps=5, window=30)
    token = await _admitted_token(room, config, "alice")
    await room.complete(config, "alice")
    with pytest.raises(TokenRejected) as info:
        await room.verify_token(token, "alice", "32")
    assert info.value.reason == "revoked"
    # Re-admitted later: the old token (old ticket) stays invalid, the new one works.
    clock.advance(1)
    new_token = await _admitted_token(room, config, "alice")
    assert await room.verify_token(new_token, "alice", "32")
    with pytest.raises(TokenRejected) as info:
        await room.verify_token(token, "alice", "32")
    assert info.value.reason == "revoked"


# --- pre-queue ---------------------------------------------------------------------------


async def _prequeue_order(redis: Redis, event: str, seed: int, early: int = 20) -> list[str]:
    """Early users join before opening, 5 late users after; returns the final queue order."""
    clock = FakeClock()
    room = WaitingRoom(redis, SECRET, clock=clock, rng=random.Random(seed))
    config = cfg(event, aps=5, opens_at=T0 + 60)
    for i in range(early):
        t = await room.join(config, f"e{i:02d}")
        assert (t.status, t.position, t.pre_queue) == ("waiting", None, True)
        clock.advance(0.5)
    early_ticket = await room.join(config, "e00")
    assert early_ticket.position is None and not early_ticket.created
    clock.t = T0 + 61
    late = [await room.join(config, f"l{i}") for i in range(5)]
    assert [t.position for t in late] == list(range(early + 1, early + 6))  # FIFO behind
    order = await members(redis, RoomKeys(event).queue)
    assert not await redis.exists(RoomKeys(event).pre)
    return order


async def test_prequeue_is_shuffled_once_at_opening_and_late_joiners_follow_fifo(
    redis: Redis,
) -> None:
    arrival = [f"e{i:02d}" for i in range(20)]
    orders = [await _prequeue_order(redis, f"4{n}", seed=n) for n in range(6)]
    for order in orders:
        assert sorted(order[:20]) == arrival
        assert order[20:] == [f"l{i}" for i in range(5)]
        assert order[:20] != arrival  # 1/20! chance of a false failure
    assert len({tuple(o[:20]) for o in orders}) > 1  # the draw depends on the randomness
    # Same seed, same draw: the shuffle is reproducible.
    assert await _prequeue_order(redis, "49", seed=3) == orders[3]


async def test_prequeue_opens_at_first_tick_and_admits_from_the_shuffled_head(
    room: WaitingRoom, clock: FakeClock, redis: Redis
) -> None:
    config = cfg("50", aps=4, opens_at=T0 + 10)
    tickets = [await room.join(config, f"e{i}") for i in range(12)]
    assert await room.admit_tick(config) == []  # not open yet: nobody in the FIFO queue
    polled = await room.poll(config, tickets[0].ticket)
    assert polled.pre_queue and polled.position is None and polled.eta_seconds
    clock.t = T0 + 10
    admitted = await room.admit_tick(config)
    order = await members(redis, RoomKeys("50").queue)
    assert len(admitted) == 4 and len(order) == 8
    assert sorted(admitted + order) == sorted(f"e{i}" for i in range(12))
    clock.advance(1)
    assert await room.admit_tick(config) == order[:4]  # opened once: order kept
    late = await room.join(config, "late")
    assert late.position == 5


# --- property: FIFO under random joins, leaves and ticks ---------------------------------

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("join"), st.integers(0, 15)),
        st.tuples(st.just("leave"), st.integers(0, 15)),
        st.tuples(st.just("tick"), st.integers(0, 0)),
    ),
    max_size=40,
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=_ops)
async def test_queue_matches_a_fifo_model(redis: Redis, ops: list[tuple[str, int]]) -> None:
    clock = FakeClock()
    room = WaitingRoom(redis, SECRET, clock=clock)
    config = cfg("60", aps=3, max_active=1000)
    await room.reset(config)
    waiting: list[str] = []
    active: set[str] = set()
    tickets: dict[str, str] = {}
    for op, n in ops:
        user = f"u{n}"
        if op == "join":
            t = await room.join(config, user)
            if user in active:
                assert t.status == "admitted" and t.ticket == tickets[user]
            elif user in waiting:
                assert t.ticket == tickets[user] and not t.created
            else:
                waiting.append(user)
                tickets[user] = t.ticket
            if user in waiting:
                assert t.position == waiting.index(user) + 1
        elif op == "leave":
            was = user in waiting or user in active
            assert await room.leave(config, user) is was
            if user in waiting:
                waiting.remove(user)
            active.discard(user)
        else:
            assert await room.admit_tick(config) == waiting[:3]
            active.update(waiting[:3])
            del waiting[:3]
            clock.advance(1)
    for i, user in enumerate(waiting):
        assert (await room.poll(config, tickets[user])).position == i + 1


async def test_pipelined_batch_routes_each_result_and_error_to_its_caller(
    room: WaitingRoom,
) -> None:
    config = cfg("70")
    scripts = room._scripts
    assert scripts.batcher is not None
    bad = scripts.run(scripts.admit, [RoomKeys("70").queue] * 7, ["not-a-number"] * 8)
    results = await asyncio.gather(
        room.join(config, "a"), bad, room.join(config, "b"), return_exceptions=True
    )
    assert [type(r).__name__ for r in results] == ["Ticket", "ResponseError", "Ticket"]
    assert [getattr(r, "position", None) for r in results] == [1, None, 2]
