"""The admission token API through the live server: JWKS, POST /api/admission/verify, the
offline snippet of docs/admission.md; operators, pause/resume, live max_active, the record."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import jwt
import pytest
import redis.asyncio as aioredis

from tests.conftest import ADMIN_TOKEN, ROOT, TEST_REDIS_URL, bearer, make_event, make_user
from tests.test_admission_flow import poll_until_admitted
from waitingroom.keys import RoomKeys
from waitingroom.signing import KeyRing
from waitingroom.tokens import TokenSigner

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DEV_SEED = "test-admission-secret"  # conftest's ADMISSION_SECRET: the server's dev key seed
DEADLINE_SECONDS = 20


def offline_verifier(jwks_url: str) -> Any:
    """The docs' offline verification block, run as written."""
    text = (ROOT / "docs" / "admission.md").read_text()
    section = text.split("### Verifying offline", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    assert len(code.group(1).strip().splitlines()) <= 14  # "about ten lines"
    namespace: dict[str, Any] = {"JWKS_URL": jwks_url}
    exec(code.group(1), namespace)
    return namespace["verify_admission"]


async def _admitted(http: httpx.AsyncClient) -> tuple[int, dict[str, Any], str, str]:
    event = await make_event(http, rows=1, seats_per_row=2, waiting_room=True)
    user = await make_user(http, "Verifier")
    r = await http.post(f"/api/events/{event['id']}/queue", headers=bearer(user))
    assert r.status_code == 201, r.text
    ticket = r.json()["ticket"]
    body = await poll_until_admitted(http, event["id"], ticket)
    return event["id"], user, ticket, body["admission_token"]


async def _verify(http: httpx.AsyncClient, body: Any) -> httpx.Response:
    return await http.post("/api/admission/verify", json=body)


async def test_verify_endpoint_jwks_and_the_offline_snippet(
    http: httpx.AsyncClient, live_server: str
) -> None:
    eid, user, ticket, token = await _admitted(http)

    jwks = (await http.get("/.well-known/jwks.json")).json()
    kid = jwt.get_unverified_header(token)["kid"]
    assert kid in [k["kid"] for k in jwks["keys"]] and kid.startswith("dev-")
    assert all("d" not in k for k in jwks["keys"])  # public halves only

    r = await _verify(http, {"token": token, "event": eid})
    assert r.status_code == 200, r.text
    claims = r.json()
    assert (claims["user"], claims["event"], claims["ticket"]) == (
        str(user["id"]),
        str(eid),
        ticket,
    )
    assert time.time() < claims["expires_at"] <= time.time() + 61
    assert (await _verify(http, {"token": token})).status_code == 200

    verify_admission = offline_verifier(f"{live_server}/.well-known/jwks.json")
    assert verify_admission(token, str(eid))["jti"] == ticket

    expired = TokenSigner(KeyRing.development(DEV_SEED), lambda: time.time() - 120).issue(
        str(user["id"]), str(eid), ticket, int((time.time() - 60) * 1000)
    )
    forged = TokenSigner(KeyRing.development("attacker"), time.time).issue(
        str(user["id"]), str(eid), ticket, int((time.time() + 60) * 1000)
    )
    cases = [
        ({"token": token, "event": eid + 10_000}, 403, "wrong_event"),
        ({"token": forged}, 401, "forged"),
        ({"token": token[:-3] + "AAA"}, 401, "forged"),
        ({"token": "not-a-jwt"}, 401, "forged"),
        ({"token": expired}, 401, "expired"),
    ]
    for body, status, reason in cases:
        r = await _verify(http, body)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["reason"] == reason
    for bad in (forged, expired):
        with pytest.raises(jwt.PyJWTError):
            verify_admission(bad, str(eid))
    with pytest.raises(jwt.InvalidTokenError):
        verify_admission(token, str(eid + 1))

    for raw in (
        b"{",
        b"[]",
        b'{"token": 5}',
        b'{"token": "x", "more": 1}',
        b'{"token": "x", "event": true}',
    ):
        r = await http.post("/api/admission/verify", content=raw)
        assert r.status_code == 400, (raw, r.text)

    # Revocation: leaving ends the admission; the endpoint sees it at once, an offline verifier
    # only when the short-lived token expires (the documented trade-off).
    r = await http.delete(f"/api/events/{eid}/queue/{ticket}", headers=bearer(user))
    assert r.status_code == 200
    r = await _verify(http, {"token": token})
    assert r.status_code == 403 and r.json()["reason"] == "revoked"
    assert verify_admission(token, str(eid))["sub"] == str(user["id"])


async def _wait(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_operators_pause_resume_live_max_active_and_the_record(
    http: httpx.AsyncClient,
) -> None:
    r = await http.post("/api/admin/operators", json={"name": f"op{time.time_ns()}"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    name, op = r.json()["name"], {"Authorization": f"Bearer {r.json()['token']}"}
    assert (
        await http.get("/api/admin/rooms", headers={"Authorization": "Bearer nope"})
    ).status_code == 403
    assert (await http.get("/api/admin/rooms")).status_code == 401

    event = await make_event(http, rows=1, seats_per_row=4, waiting_room=True)
    eid = event["id"]
    r = await http.patch(
        f"/api/admin/events/{eid}/waiting-room",
        json={"paused": True, "admit_per_second": 10, "max_active": 2},
        headers=op,
    )
    assert r.status_code == 200 and r.json()["waiting_room"]["paused"] is True
    users = [await make_user(http, f"P{i}") for i in range(4)]
    tickets = []
    for user in users:
        r = await http.post(f"/api/events/{eid}/queue", headers=bearer(user))
        tickets.append(r.json()["ticket"])

    client = aioredis.Redis.from_url(TEST_REDIS_URL)
    try:
        keys = RoomKeys(str(eid))
        start = int(time.time())

        async def ticked_twice() -> bool:
            last = await client.get(keys.tick)
            return last is not None and int(last) >= start + 2

        # The admitter ran at least two steps while paused: nobody admitted, places kept.
        await _wait(ticked_twice, "two admission steps")
        states = [(await http.get(f"/api/events/{eid}/queue/{t}")).json() for t in tickets]
        assert [s["position"] for s in states] == [1, 2, 3, 4]
        assert all(s["status"] == "waiting" and s["paused"] for s in states)
        r = await http.post(
            f"/api/events/{eid}/holds",
            json={"seat_ids": event["seat_ids"][:1]},
            headers=bearer(users[0]),
        )
        assert r.status_code == 403  # paused is not "no waiting room"

        async def active(n: int) -> bool:
            return int(await client.zcard(keys.active)) == n

        r = await http.patch(
            f"/api/admin/events/{eid}/waiting-room", json={"paused": False}, headers=op
        )
        assert r.status_code == 200
        await _wait(lambda: active(2), "two admitted (max_active)")
        await asyncio.sleep(1.2)  # at least one more step: max_active still holds
        assert await active(2) and int(await client.zcard(keys.queue)) == 2
        r = await http.patch(
            f"/api/admin/events/{eid}/waiting-room", json={"max_active": 4}, headers=ADMIN
        )
        assert r.status_code == 200
        await _wait(lambda: active(4), "all four admitted after max_active 4")
    finally:
        await client.aclose()

    rooms = (await http.get("/api/admin/rooms", headers=op)).json()
    assert rooms["operator"] == name
    room = next(r for r in rooms["rooms"] if r["event_id"] == eid)
    assert (room["waiting"], room["active"], room["paused"]) == (0, 4, False)

    actions = (await http.get("/api/admin/actions?limit=50", headers=op)).json()["actions"]
    mine = [
        (a["operator"], a["action"], a["before"], a["after"])
        for a in actions
        if a["event_id"] == eid
    ]
    assert [m[:2] for m in mine][:3] == [
        ("admin-token", "room.update"),
        (name, "room.resume"),
        (name, "room.pause"),
    ]
    assert mine[0][2]["max_active"] == 2 and mine[0][3]["max_active"] == 4
    assert mine[1][2]["paused"] is True and mine[1][3]["paused"] is False
    assert mine[2][3] == {**mine[2][2], "paused": True, "admit_per_second": 10, "max_active": 2}
    assert (await http.get("/api/admin/actions?limit=0", headers=op)).status_code == 422

    assert (await http.delete(f"/api/admin/operators/{name}", headers=ADMIN)).status_code == 204
    assert (await http.get("/api/admin/rooms", headers=op)).status_code == 403
    r = await http.post("/api/admin/operators", json={"name": name}, headers=ADMIN)
    assert r.status_code == 409
