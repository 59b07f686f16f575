"""HTTP-level tests of waitingroom.build_routes in a minimal Starlette app (real Redis)."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request

from waitingroom import RoomConfig, WaitingRoom, build_routes

# Own variable, not TEST_REDIS_URL: that one names the suite-wide db (conftest, live server),
# and these fixtures flush their db before every test.
REDIS_URL = os.environ.get("WAITINGROOM_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
SECRET = "test-admission-secret-of-sufficient-length"
T0 = 1_800_000_000.0

CONFIGS = {
    "101": RoomConfig("101", True, admit_per_second=2, max_active=10, admission_window_seconds=60),
    "102": RoomConfig("102", False, admit_per_second=2, max_active=10, admission_window_seconds=60),
}


class FakeClock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


async def get_config(event_id: str) -> RoomConfig | None:
    return CONFIGS.get(event_id)


async def authenticate(request: Request) -> str:
    user = request.headers.get("x-user")
    if not user:
        raise HTTPException(401, "missing credentials")
    return user


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def room(redis: Redis, clock: FakeClock) -> WaitingRoom:
    return WaitingRoom(redis, SECRET, clock=clock, rng=random.Random(1), poll_limit_per_second=2)


@pytest.fixture
async def client(room: WaitingRoom) -> AsyncIterator[httpx.AsyncClient]:
    routes = build_routes(room, get_config, authenticate)
    app = Starlette(routes=routes)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def assert_problem(resp: httpx.Response, status: int, kind: str) -> None:
    assert resp.status_code == status
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["status"] == status and body["title"] and body["detail"]
    # The service's one type base (booking's problems share it).
    assert body["type"] == "https://flashsale.example/problems/" + kind


async def test_join_poll_admit_flow(client: httpx.AsyncClient, room: WaitingRoom) -> None:
    first = await client.post("/api/events/101/queue", headers={"x-user": "alice"})
    assert first.status_code == 201
    body = first.json()
    assert body["position"] == 1 and body["ticket"]
    assert first.headers["cache-control"] == "no-store"

    again = await client.post("/api/events/101/queue", headers={"x-user": "alice"})
    assert again.status_code == 201 and again.json()["ticket"] == body["ticket"]
    bob = await client.post("/api/events/101/queue", headers={"x-user": "bob"})
    assert bob.json()["position"] == 2

    poll = await client.get(f"/api/events/101/queue/{bob.json()['ticket']}")
    assert poll.status_code == 200
    assert poll.json() == {
        "status": "waiting",
        "position": 2,
        "eta_seconds": 1,
        "pre_queue": False,
        "paused": False,
    }

    assert await room.admit_tick(CONFIGS["101"]) == ["alice", "bob"]
    admitted = (await client.get(f"/api/events/101/queue/{body['ticket']}")).json()
    assert admitted["status"] == "admitted" and admitted["position"] is None
    assert await room.verify_token(admitted["admission_token"], "alice", 101)


async def test_poll_too_fast_gets_429_with_retry_after(client: httpx.AsyncClient) -> None:
    ticket = (await client.post("/api/events/101/queue", headers={"x-user": "carol"})).json()
    url = f"/api/events/101/queue/{ticket['ticket']}"
    statuses = [(await client.get(url)) for _ in range(3)]
    assert [r.status_code for r in statuses[:2]] == [200, 200]
    assert_problem(statuses[2], 429, "poll-rate-limited")
    assert statuses[2].headers["retry-after"] == "1"


async def test_errors_are_problem_json(client: httpx.AsyncClient) -> None:
    assert_problem(
        await client.post("/api/events/999/queue", headers={"x-user": "a"}), 404, "event-not-found"
    )
    assert_problem(await client.get("/api/events/999/queue/abc"), 404, "event-not-found")
    assert_problem(
        await client.post("/api/events/102/queue", headers={"x-user": "a"}),
        409,
        "waiting-room-closed",
    )
    assert_problem(
        await client.get("/api/events/101/queue/no-such-ticket"), 404, "ticket-not-found"
    )
    assert_problem(await client.get("/api/events/101/queue/%7Bbad%7D"), 404, "ticket-not-found")
    assert (await client.post("/api/events/101/queue")).status_code == 401
    assert (await client.post("/api/events/abc/queue", headers={"x-user": "a"})).status_code == 404


async def test_leave_gives_the_place_to_the_next_in_line(
    client: httpx.AsyncClient, room: WaitingRoom
) -> None:
    alice = (await client.post("/api/events/101/queue", headers={"x-user": "alice"})).json()
    bob = (await client.post("/api/events/101/queue", headers={"x-user": "bob"})).json()
    url = f"/api/events/101/queue/{alice['ticket']}"
    # Only the ticket's owner can give it up.
    assert_problem(await client.delete(url, headers={"x-user": "bob"}), 404, "ticket-not-found")
    assert (await client.delete(url)).status_code == 401
    left = await client.delete(url, headers={"x-user": "alice"})
    assert left.status_code == 200 and left.json() == {"status": "left"}
    poll = (await client.get(f"/api/events/101/queue/{bob['ticket']}")).json()
    assert poll["position"] == 1
    assert await room.admit_tick(CONFIGS["101"]) == ["bob"]
