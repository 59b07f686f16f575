"""Bot defence against a live server with every part turned on (the suite's default server has
them off): per-IP limits (429 + Retry-After), X-Forwarded-For from trusted proxies only, the
per-buyer seat cap under concurrent holds (rows counted in PostgreSQL), and the proof-of-work
gate on join (missing/forged/expired/reused/wrong-event/unsolved/too-easy refused, valid
accepted, verification O(1)).

Every client here connects from 127.0.0.1; the defended server trusts 127.0.0.1 as a proxy, so
each test picks its own client addresses with X-Forwarded-For and the counters never collide.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from booking.clientip import parse_trusted, resolve_client_ip
from tests.conftest import ADMIN_TOKEN, bearer, free_port, start_server, stop
from waitingroom.pow import ChallengeSigner, PowRejected, digest, meets_difficulty, solve
from waitingroom.throttle import Throttle, join_counter_key

POW_SECRET = "test-pow-secret-of-sufficient-length"
LIMIT = 3
SEAT_CAP = 4
DIFFICULTY = 8  # 256 hashes on average: quick for Python, still refuses a random nonce
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
_addresses = itertools.count(1)


def new_ip() -> str:
    """A client address no other test uses (TEST-NET-2, 198.51.100.0/24 and onwards)."""
    n = next(_addresses)
    return f"198.51.{100 + n // 250}.{n % 250 + 1}"


def xff(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip}


DEFENDED_ENV = {
    "ACCOUNTS_PER_IP_PER_MINUTE": str(LIMIT),
    "JOINS_PER_IP_PER_MINUTE": str(LIMIT),
    "UNKNOWN_POLLS_PER_IP_PER_MINUTE": str(LIMIT),
    "TRUSTED_PROXIES": "127.0.0.1/32, ::1",
    "MAX_SEATS_PER_BUYER": str(SEAT_CAP),
    "POW_DIFFICULTY": str(DIFFICULTY),
    "POW_SECRET": POW_SECRET,
    "ADMITTER_ENABLED": "0",  # nobody is admitted: joins stay in the queue
}


@pytest.fixture(scope="module")
def defended_server(database_url: str, redis_url: str) -> Iterator[str]:
    port = free_port()
    proc = start_server(port, **DEFENDED_ENV)
    yield f"http://127.0.0.1:{port}"
    stop(proc)


@pytest.fixture
async def client(defended_server: str) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=defended_server, timeout=30, limits=limits) as c:
        yield c


async def new_user(client: httpx.AsyncClient) -> dict[str, Any]:
    email = f"bot.{uuid.uuid4().hex[:12]}@example.com"
    r = await client.post("/api/users", json={"name": "B", "email": email}, headers=xff(new_ip()))
    assert r.status_code == 201, r.text
    user: dict[str, Any] = r.json()
    return user


async def new_event(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    r = await client.post(
        "/api/admin/events",
        json={
            "name": f"Bot defence {uuid.uuid4().hex[:8]}",
            "starts_at": "2030-01-01T20:00:00+00:00",
            "seats": [{"section": "A", "rows": 2, "seats_per_row": 10, "price": 100}],
            **fields,
        },
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    event: dict[str, Any] = r.json()
    seats = (await client.get(f"/api/events/{event['id']}/seats")).json()
    event["seat_ids"] = [s["id"] for s in seats]
    return event


def assert_limited(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert r.json()["status"] == 429


# --- limits ------------------------------------------------------------------------------------


async def test_new_accounts_per_ip(client: httpx.AsyncClient) -> None:
    ip, other = new_ip(), new_ip()

    async def signup(address: str) -> httpx.Response:
        body = {"name": "B", "email": f"a.{uuid.uuid4().hex}@example.com"}
        return await client.post("/api/users", json=body, headers=xff(address))

    assert [(await signup(ip)).status_code for _ in range(LIMIT)] == [201] * LIMIT
    assert_limited(await signup(ip))
    # The browser sign-up creates accounts too: same counter.
    body = {"name": "B", "email": f"s.{uuid.uuid4().hex}@example.com"}
    assert_limited(await client.post("/api/session/signup", json=body, headers=xff(ip)))
    # Another address (a different client behind the same trusted proxy) is not affected.
    assert (await signup(other)).status_code == 201


async def test_queue_joins_per_ip(client: httpx.AsyncClient) -> None:
    event = await new_event(client, waiting_room_enabled=True, pow_difficulty=0)
    ip = new_ip()
    users = [await new_user(client) for _ in range(LIMIT + 1)]
    url = f"/api/events/{event['id']}/queue"
    for user in users[:LIMIT]:
        r = await client.post(url, headers={**bearer(user), **xff(ip)})
        assert r.status_code == 201, r.text
    assert_limited(await client.post(url, headers={**bearer(users[LIMIT]), **xff(ip)}))
    ok = await client.post(url, headers={**bearer(users[LIMIT]), **xff(new_ip())})
    assert ok.status_code == 201, ok.text


async def test_gate_joins_per_ip(client: httpx.AsyncClient) -> None:
    """The nginx gate's anonymous join: each request may bring a fresh visitor cookie, so the
    per-address limit is what bounds the places one client takes."""
    event = await new_event(client, waiting_room_enabled=True)
    ip = new_ip()
    url = f"/gate/{event['id']}/join"
    for _ in range(LIMIT):
        client.cookies.clear()  # a new anonymous visitor every time
        r = await client.post(url, headers=xff(ip))
        assert r.status_code == 201, r.text
    client.cookies.clear()
    assert_limited(await client.post(url, headers=xff(ip)))
    client.cookies.clear()
    ok = await client.post(url, headers=xff(new_ip()))
    assert ok.status_code == 201, ok.text


async def test_limit_counters_carry_the_deployment_key_prefix(redis_url: str) -> None:
    """REDIS_KEY_PREFIX isolates deployments sharing one Redis (Cluster): the limits too."""
    client = Redis.from_url(redis_url)
    try:
        key = join_counter_key("77", new_ip())
        assert await Throttle(client, "tenant-a:").hit(key, 1) is None
        assert await client.exists("tenant-a:" + key) == 1
        assert await client.exists(key) == 0
        # Another deployment counts separately: its first hit is allowed.
        assert await Throttle(client, "tenant-b:").hit(key, 1) is None
        assert await Throttle(client, "tenant-a:").hit(key, 1) is not None
    finally:
        await client.aclose()


async def test_polls_of_unknown_tickets_per_ip(client: httpx.AsyncClient) -> None:
    event = await new_event(client, waiting_room_enabled=True, pow_difficulty=0)
    user = await new_user(client)
    ip = new_ip()
    joined = await client.post(
        f"/api/events/{event['id']}/queue", headers={**bearer(user), **xff(ip)}
    )
    ticket = joined.json()["ticket"]
    for _ in range(LIMIT):
        r = await client.get(
            f"/api/events/{event['id']}/queue/guess{uuid.uuid4().hex[:8]}", headers=xff(ip)
        )
        assert r.status_code == 404
    assert_limited(await client.get(f"/api/events/{event['id']}/queue/guess-more", headers=xff(ip)))
    # Only unknown tickets count: the address's real ticket still answers.
    r = await client.get(f"/api/events/{event['id']}/queue/{ticket}", headers=xff(ip))
    assert r.status_code == 200, r.text


async def test_forwarded_chain_through_trusted_proxies(client: httpx.AsyncClient) -> None:
    """`client, proxy` from a trusted peer: the trusted hop is skipped, the client counted."""
    ip = new_ip()

    async def signup(header: str) -> int:
        body = {"name": "B", "email": f"c.{uuid.uuid4().hex}@example.com"}
        r = await client.post("/api/users", json=body, headers={"X-Forwarded-For": header})
        return r.status_code

    codes = [await signup(f"{ip}, 127.0.0.1") for _ in range(LIMIT)]
    # The same client seen directly by the proxy shares the count; a spoofed left hop does not
    # help either: only the rightmost untrusted hop is the client.
    assert [*codes, await signup(f"6.6.6.6, {ip}")] == [*([201] * LIMIT), 429]


def test_untrusted_peer_cannot_choose_its_address(database_url: str, redis_url: str) -> None:
    port = free_port()
    env = {**DEFENDED_ENV, "TRUSTED_PROXIES": "10.0.0.0/8", "ACCOUNTS_PER_IP_PER_MINUTE": "2"}
    proc = start_server(port, **env)
    try:
        codes = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            for _ in range(3):
                body = {"name": "B", "email": f"u.{uuid.uuid4().hex}@example.com"}
                codes.append(c.post("/api/users", json=body, headers=xff(new_ip())).status_code)
    finally:
        stop(proc)
    # Every request claimed a new address, but 127.0.0.1 is not trusted: all count for it.
    assert codes == [201, 201, 429]


async def test_zero_turns_the_limits_off(http: httpx.AsyncClient) -> None:
    """The suite's default server sets every limit to 0: one address is never refused."""
    event = await new_event(http, waiting_room_enabled=True)
    url = f"/api/events/{event['id']}"
    for _ in range(LIMIT + 2):
        user = await new_user(http)
        assert (await http.post(f"{url}/queue", headers=bearer(user))).status_code == 201
        assert (await http.get(f"{url}/queue/nope{uuid.uuid4().hex[:6]}")).status_code == 404


@pytest.mark.parametrize(
    ("peer", "header", "trusted", "expected"),
    [
        ("127.0.0.1", [], "", "127.0.0.1"),
        ("127.0.0.1", ["1.2.3.4"], "", "127.0.0.1"),  # nobody trusted: header ignored
        ("127.0.0.1", ["1.2.3.4"], "10.0.0.0/8", "127.0.0.1"),  # peer not trusted
        ("10.1.2.3", ["1.2.3.4"], "10.0.0.0/8", "1.2.3.4"),
        ("10.1.2.3", ["6.6.6.6, 1.2.3.4, 10.9.9.9"], "10.0.0.0/8", "1.2.3.4"),
        ("10.1.2.3", ["6.6.6.6", "1.2.3.4"], "10.0.0.0/8", "1.2.3.4"),  # repeated header
        ("10.1.2.3", ["garbage, 1.2.3.4"], "10.0.0.0/8", "1.2.3.4"),
        ("10.1.2.3", ["1.2.3.4, garbage"], "10.0.0.0/8", "10.1.2.3"),  # stop at a bad hop
        ("10.1.2.3", ["10.0.0.7"], "10.0.0.0/8", "10.0.0.7"),  # all trusted: the leftmost
        ("::1", ["2001:db8::5"], "::1", "2001:db8::5"),
    ],
)
def test_client_ip_resolution(peer: str, header: list[str], trusted: str, expected: str) -> None:
    assert resolve_client_ip(peer, header, parse_trusted(trusted)) == expected


def test_trusted_proxies_setting_is_validated() -> None:
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        parse_trusted("10.0.0.0/8, not-an-ip")


# --- seat cap -----------------------------------------------------------------------------------


async def live_seats(db: asyncpg.Pool, user_id: int, event_id: int) -> int:
    n: int = await db.fetchval(
        "SELECT count(*) FROM reservations r JOIN reservation_seats rs"
        " ON rs.reservation_id = r.id AND rs.active"
        " WHERE r.user_id = $1 AND r.event_id = $2 AND r.status IN ('held', 'paid')",
        user_id,
        event_id,
    )
    return n


async def race_holds(
    defended_server: str, user: dict[str, Any], event: dict[str, Any], holds: int
) -> list[int]:
    """`holds` concurrent holds of 2 distinct seats each, one connection per hold."""
    seats = event["seat_ids"]

    async def hold(i: int) -> int:
        async with httpx.AsyncClient(base_url=defended_server, timeout=30) as c:
            r = await c.post(
                f"/api/events/{event['id']}/holds",
                json={"seat_ids": seats[2 * i : 2 * i + 2]},
                headers=bearer(user),
            )
            if r.status_code == 409:
                assert r.json()["type"].endswith("/buyer-seat-cap"), r.text
            return r.status_code

    return list(await asyncio.gather(*(hold(i) for i in range(holds))))


async def test_concurrent_holds_by_one_buyer_never_exceed_the_cap(
    client: httpx.AsyncClient, defended_server: str, db: asyncpg.Pool
) -> None:
    event = await new_event(client)
    user = await new_user(client)
    codes = await race_holds(defended_server, user, event, 10)
    assert sorted(codes) == [201] * (SEAT_CAP // 2) + [409] * (10 - SEAT_CAP // 2)
    assert await live_seats(db, user["id"], event["id"]) == SEAT_CAP
    # Another buyer has a cap of their own (on seats the race left free).
    taken = await db.fetch(
        "SELECT seat_id FROM reservation_seats WHERE active AND seat_id = ANY($1::bigint[])",
        event["seat_ids"],
    )
    free = sorted(set(event["seat_ids"]) - {row["seat_id"] for row in taken})
    other = await new_user(client)
    r = await client.post(
        f"/api/events/{event['id']}/holds",
        json={"seat_ids": free[:SEAT_CAP]},
        headers=bearer(other),
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(("override", "expected_seats"), [(6, 6), (0, 20)])
async def test_per_event_cap_override(
    client: httpx.AsyncClient,
    defended_server: str,
    db: asyncpg.Pool,
    override: int,
    expected_seats: int,
) -> None:
    event = await new_event(client)
    r = await client.patch(
        f"/api/admin/events/{event['id']}", json={"max_seats_per_buyer": override}, headers=ADMIN
    )
    assert r.status_code == 200 and r.json()["max_seats_per_buyer"] == override, r.text
    empty = await client.patch(f"/api/admin/events/{event['id']}", json={}, headers=ADMIN)
    assert empty.status_code == 422, empty.text
    user = await new_user(client)
    codes = await race_holds(defended_server, user, event, 10)
    assert codes.count(201) == expected_seats // 2
    assert await live_seats(db, user["id"], event["id"]) == expected_seats


async def test_cap_counts_held_seats_and_frees_them_on_cancel(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    event = await new_event(client, max_seats_per_buyer=2)
    user = await new_user(client)
    url = f"/api/events/{event['id']}/holds"
    first = await client.post(url, json={"seat_ids": event["seat_ids"][:2]}, headers=bearer(user))
    assert first.status_code == 201
    refused = await client.post(
        url, json={"seat_ids": event["seat_ids"][2:3]}, headers=bearer(user)
    )
    assert refused.status_code == 409 and refused.json()["cap"] == 2, refused.text
    rid = first.json()["reservation_id"]
    assert (
        await client.delete(f"/api/reservations/{rid}", headers=bearer(user))
    ).status_code == 200
    again = await client.post(url, json={"seat_ids": event["seat_ids"][2:4]}, headers=bearer(user))
    assert again.status_code == 201, again.text
    assert await live_seats(db, user["id"], event["id"]) == 2


# --- proof of work ------------------------------------------------------------------------------


async def challenge(client: httpx.AsyncClient, event_id: int) -> dict[str, Any]:
    r = await client.get(f"/api/events/{event_id}/challenge")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def solution(token: str, nonce: str | None = None) -> dict[str, str]:
    return {"X-PoW-Challenge": token, "X-PoW-Nonce": nonce or solve(token, DIFFICULTY)}


def unsolved_nonce(token: str, difficulty: int) -> str:
    return next(
        str(n) for n in range(1000) if not meets_difficulty(digest(token, str(n)), difficulty)
    )


@pytest.fixture
async def pow_event(client: httpx.AsyncClient) -> dict[str, Any]:
    event = await new_event(client, waiting_room_enabled=True)  # POW_DIFFICULTY from the env
    assert event["waiting_room"]["pow_difficulty"] == DIFFICULTY
    return event


async def join(
    client: httpx.AsyncClient, event_id: int, user: dict[str, Any], pow_headers: dict[str, str]
) -> httpx.Response:
    headers = {**bearer(user), **xff(new_ip()), **pow_headers}
    return await client.post(f"/api/events/{event_id}/queue", headers=headers)


def assert_pow_refused(r: httpx.Response, reason: str) -> dict[str, Any]:
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["reason"] == reason, body
    # The refusal carries a fresh challenge to solve.
    assert body["difficulty"] >= DIFFICULTY and body["challenge"].startswith("v1.")
    return body


async def test_challenge_of_an_unknown_event_is_404(client: httpx.AsyncClient) -> None:
    for event_id in ("999999999", str(2**64)):
        r = await client.get(f"/api/events/{event_id}/challenge")
        assert r.status_code == 404, r.text


async def test_valid_solution_is_accepted_once(
    client: httpx.AsyncClient, pow_event: dict[str, Any]
) -> None:
    c = await challenge(client, pow_event["id"])
    assert c["difficulty"] == DIFFICULTY and c["expires"] > 0
    headers = solution(c["challenge"])
    user, other = await new_user(client), await new_user(client)
    assert (await join(client, pow_event["id"], user, headers)).status_code == 201
    assert_pow_refused(await join(client, pow_event["id"], other, headers), "reused")


async def test_refused_joins_and_the_fresh_challenge(
    client: httpx.AsyncClient, pow_event: dict[str, Any]
) -> None:
    eid = pow_event["id"]
    user = await new_user(client)
    token = (await challenge(client, eid))["challenge"]
    parts = token.split(".")
    expired = ChallengeSigner(POW_SECRET, ttl_seconds=60, clock=lambda: 1_000_000.0).issue(
        str(eid), DIFFICULTY
    )
    foreign = await challenge(client, (await new_event(client, waiting_room_enabled=True))["id"])
    cases = {
        "missing": {},
        "malformed": solution("garbage", "1"),
        "forged": solution(".".join([*parts[:2], "1", *parts[3:]]), "0"),  # difficulty lowered
        "expired": solution(expired.token),
        "wrong_event": solution(foreign["challenge"]),
        "unsolved": solution(token, unsolved_nonce(token, DIFFICULTY)),
    }
    fresh: dict[str, Any] = {}
    for reason, headers in cases.items():
        fresh = assert_pow_refused(await join(client, eid, user, headers), reason)
    # The challenge a refusal carries is good for the next attempt.
    assert (await join(client, eid, user, solution(fresh["challenge"]))).status_code == 201


async def test_difficulty_is_per_event_and_raising_it_refuses_easier_solutions(
    client: httpx.AsyncClient, pow_event: dict[str, Any]
) -> None:
    eid = pow_event["id"]
    easy = (await challenge(client, eid))["challenge"]
    url = f"/api/admin/events/{eid}/waiting-room"
    r = await client.patch(url, json={"pow_difficulty": DIFFICULTY + 2}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["waiting_room"]["pow_difficulty"] == DIFFICULTY + 2
    user = await new_user(client)
    assert_pow_refused(await join(client, eid, user, solution(easy)), "too_easy")
    hard = await challenge(client, eid)
    assert hard["difficulty"] == DIFFICULTY + 2
    nonce = solve(hard["challenge"], DIFFICULTY + 2)
    assert (await join(client, eid, user, solution(hard["challenge"], nonce))).status_code == 201
    # 0 turns the gate off for this event.
    assert (await client.patch(url, json={"pow_difficulty": 0}, headers=ADMIN)).status_code == 200
    assert (await challenge(client, eid))["challenge"] is None
    assert (await join(client, eid, await new_user(client), {})).status_code == 201
    bad = await client.patch(url, json={"pow_difficulty": 33}, headers=ADMIN)
    assert bad.status_code == 422


def test_verification_is_constant_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verifying costs the same few hashes at any difficulty; solving costs ~2**difficulty."""
    real = hashlib.sha256
    calls = 0

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)

    signer = ChallengeSigner(POW_SECRET)
    counts = {}
    for difficulty in (4, 16):
        c = signer.issue("7", difficulty)
        nonce = solve(c.token, difficulty)
        monkeypatch.setattr(hashlib, "sha256", counting)
        calls = 0
        assert signer.verify(c.token, nonce, "7", difficulty) == c
        counts[difficulty] = calls
        monkeypatch.setattr(hashlib, "sha256", real)
    assert counts[4] == counts[16] <= 4, counts
    with pytest.raises(PowRejected):
        signer.verify(c.token, "x" * 10_000, "7", 16)  # oversized input: refused, not hashed
