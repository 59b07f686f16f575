"""The nginx gate: Debian's nginx with the shipped snippets (ops/nginx/gate/) in front of trivial
upstreams, two protected sites on two events, the waiting-room app behind `auth_request`.

The app runs without its admitter (on a Redis db of its own): the test runs each admission step
itself, so "the admission rate is honoured through the gate" is counted exactly, not timed.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
import redis
from redis.asyncio import Redis as AsyncRedis

from load.gatebench.nginxconf import Site, nginx_binary, render, start_nginx, stop_nginx
from tests.conftest import ADMIN_TOKEN, TEST_REDIS_URL, free_port, start_server, stop
from waitingroom import RoomConfig, WaitingRoom
from waitingroom.gate import VISITOR_PREFIX, admission_cookie, ticket_cookie
from waitingroom.signing import KeyRing
from waitingroom.tokens import TokenSigner

pytestmark = pytest.mark.nginx

GATE_REDIS_URL = TEST_REDIS_URL.rsplit("/", 1)[0] + "/7"
DEV_SEED = "test-admission-secret"  # conftest's ADMISSION_SECRET: the server's dev key seed
RATES = {"a": 2, "b": 1}
_ticks = itertools.count(1)


@dataclass(frozen=True)
class Stack:
    app: str
    sites: dict[str, str]  # "a" / "b" → site base URL
    events: dict[str, int]


def _require_nginx() -> None:
    if nginx_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is required in CI (apt-get install nginx)")
        pytest.skip("nginx not installed (apt-get install nginx)")


def _event(app: str, name: str, rate: int) -> int:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    r = httpx.post(
        f"{app}/api/admin/events",
        json={
            "name": f"gate {name}",
            "starts_at": "2030-01-01T20:00:00+00:00",
            "seats": [{"section": "A", "rows": 1, "seats_per_row": 1, "price": 1}],
            "waiting_room_enabled": True,
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    event_id = int(r.json()["id"])
    r = httpx.patch(
        f"{app}/api/admin/events/{event_id}/waiting-room",
        json={"admit_per_second": rate, "max_active": 100, "admission_window_seconds": 600},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    return event_id


@pytest.fixture(scope="module")
def stack(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    _require_nginx()
    own = redis.Redis.from_url(GATE_REDIS_URL)
    own.flushdb()
    port = free_port()
    server = start_server(port, REDIS_URL=GATE_REDIS_URL, ADMITTER_ENABLED="0")
    app = f"http://127.0.0.1:{port}"
    events = {name: _event(app, name, rate) for name, rate in RATES.items()}
    ports = {name: free_port() for name in events}
    upstreams = {name: free_port() for name in events}
    tmp = tmp_path_factory.mktemp("nginx")
    sites = [Site(ports[n], upstreams[n], events[n]) for n in events]
    nginx = start_nginx(tmp, render(tmp, port, sites), list(ports.values()))
    try:
        yield Stack(app, {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}, events)
    finally:
        stop_nginx(nginx)
        stop(server)
        own.flushdb()
        own.close()


@pytest.fixture
async def room() -> AsyncIterator[WaitingRoom]:
    client = AsyncRedis.from_url(GATE_REDIS_URL)
    yield WaitingRoom(client, "unused: this room only runs admission steps")
    await client.aclose()


async def tick(room: WaitingRoom, stack: Stack, name: str) -> list[str]:
    """One admission step of site `name`'s room, at a second no step has used yet."""
    config = RoomConfig(str(stack.events[name]), True, RATES[name], 100, 600)
    return await room.admit_tick(config, now=math.floor(time.time()) + next(_ticks))


def _page(
    client: httpx.Client, path: str = "/shop/item?id=7&x=1", cookie: str | None = None
) -> httpx.Response:
    """GET through the gate; `cookie` replaces the client's own cookies."""
    headers = {} if cookie is None else {"Cookie": cookie}
    return client.get(path, follow_redirects=False, headers=headers)


def _sent_to_queue(resp: httpx.Response) -> bool:
    location = resp.headers.get("location", "")
    return resp.status_code == 302 and location.startswith("/_waitingroom/waiting?return=")


def _upstream(resp: httpx.Response) -> bool:
    return resp.status_code == 200 and resp.text.startswith("upstream ")


def _cookie_attributes(resp: httpx.Response, name: str) -> str:
    headers = [h for h in resp.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(headers) == 1, resp.headers
    return headers[0].lower()


async def test_gate_queues_admits_at_the_room_rate_and_rejects_forged_or_expired_cookies(
    stack: Stack, room: WaitingRoom
) -> None:
    site, event = stack.sites["a"], stack.events["a"]
    visitors = [httpx.Client(base_url=site, timeout=10) for _ in range(5)]
    try:
        # Not admitted: to the waiting page, which knows where to send the buyer back.
        first = _page(visitors[0])
        assert _sent_to_queue(first), first
        assert unquote(first.headers["location"].split("return=")[1]) == "/shop/item?id=7&x=1"
        page = visitors[0].get(first.headers["location"])
        assert page.status_code == 200 and "waiting room" in page.text
        assert "/shop/item?id=7" in page.text  # the way back, embedded in the page

        positions = []
        for client in visitors:
            r = client.post("/_waitingroom/join")
            assert r.status_code == 201, r.text
            positions.append(r.json()["position"])
            attrs = _cookie_attributes(r, "wr_visitor")
            assert "httponly" in attrs and "path=/" in attrs and "domain" not in attrs
        assert positions == [1, 2, 3, 4, 5]

        # Each admission step lets exactly `admit_per_second` (2) more buyers through the gate.
        for step, expected in ((1, 2), (2, 4)):
            admitted = await tick(room, stack, "a")
            assert len(admitted) == 2, (step, admitted)
            through = []
            for i, client in enumerate(visitors):
                polled = client.get("/_waitingroom/poll")
                status = polled.json()["status"]
                if (step, i) == (1, 0):
                    attrs = _cookie_attributes(polled, admission_cookie(str(event)))
                    assert "httponly" in attrs and "samesite=lax" in attrs
                    assert "secure" not in attrs and "domain" not in attrs and "path=/" in attrs
                through.append(_upstream(_page(client)))
                assert (status == "admitted") == through[-1], (step, i, status)
            assert through == [True] * expected + [False] * (5 - expected), step

        # Forged, expired, or another event's genuine token: back to the queue.
        dev = KeyRing.development(DEV_SEED)
        now = time.time()
        signer = TokenSigner(dev, lambda: now - 120)
        user = VISITOR_PREFIX + str(visitors[0].cookies["wr_visitor"])
        ticket = str(visitors[0].cookies[ticket_cookie(str(event))])
        expired = signer.issue(user, str(event), ticket, int((now - 1) * 1000))
        forged = TokenSigner(KeyRing.development("attacker"), time.time).issue(
            user, str(event), ticket, int((now + 300) * 1000)
        )
        genuine = str(visitors[0].cookies[admission_cookie(str(event))])
        other_site = str(stack.events["b"])
        name = admission_cookie(str(event))
        with httpx.Client(base_url=site, timeout=10) as stranger:
            assert _upstream(_page(stranger, cookie=f"{name}={genuine}"))
            for bad in (expired, forged, genuine[:-4] + "AAAA", "garbage"):
                assert _sent_to_queue(_page(stranger, cookie=f"{name}={bad}")), bad
        with httpx.Client(base_url=stack.sites["b"], timeout=10) as stranger:
            cookie = f"{admission_cookie(other_site)}={genuine}"
            assert _sent_to_queue(_page(stranger, cookie=cookie))

        # A token near its end is renewed through the gate while the admission is active.
        aging = TokenSigner(dev, lambda: now - 55).issue(user, str(event), ticket, 10**13)
        with httpx.Client(base_url=site, timeout=10) as returning:
            r = _page(returning, cookie=f"{name}={aging}")
            assert _upstream(r), r
            renewed = _cookie_attributes(r, name).split(";")[0].split("=", 1)[1]
            claims = TokenSigner(dev, time.time).decode(r.cookies[name])
            assert renewed == r.cookies[name].lower() and r.cookies[name] != aging
            assert claims.expires_at >= int(now) + 50
            # ...but not once the admission ended (the room was reset: admissions cleared).
            await room.reset(str(event))
            assert _sent_to_queue(_page(returning, cookie=f"{name}={aging}"))
    finally:
        for client in visitors:
            client.close()


async def test_two_sites_each_gated_by_its_own_room_and_rate(
    stack: Stack, room: WaitingRoom
) -> None:
    clients = {
        name: [httpx.Client(base_url=stack.sites[name], timeout=10) for _ in range(3)]
        for name in ("a", "b")
    }
    try:
        await room.reset(str(stack.events["a"]))
        for group in clients.values():
            for client in group:
                assert _sent_to_queue(_page(client))
                assert client.post("/_waitingroom/join").status_code == 201
        admitted = {"a": await tick(room, stack, "a"), "b": await tick(room, stack, "b")}
        assert {n: len(a) for n, a in admitted.items()} == {"a": 2, "b": 1}
        for name, group in clients.items():
            through = []
            for client in group:
                client.get("/_waitingroom/poll")
                r = _page(client, "/")
                through.append(_upstream(r))
                # Each site proxies to its own upstream only.
                if through[-1]:
                    other = stack.sites["b" if name == "a" else "a"]
                    assert r.text.split()[1] != other.rsplit(":", 1)[1]
            assert sum(through) == RATES[name], (name, through)
        # A cookie of site A is a stranger on site B (another event, another cookie).
        a_cookies = "; ".join(f"{k}={v}" for k, v in clients["a"][0].cookies.items())
        assert admission_cookie(str(stack.events["a"])) in a_cookies
        with httpx.Client(base_url=stack.sites["b"], timeout=10) as b_client:
            assert _sent_to_queue(_page(b_client, cookie=a_cookies))
    finally:
        for group in clients.values():
            for client in group:
                client.close()


def test_gate_snippets_are_the_shipped_files(tmp_path: Path) -> None:
    _require_nginx()
    config = render(tmp_path, 1, [Site(2, 3, 4)])
    assert "ops/nginx/gate/waitingroom-locations.conf" in config
    assert "ops/nginx/gate/waitingroom-protect.conf" in config
