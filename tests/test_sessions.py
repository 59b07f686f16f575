"""Browser identity and the buyer-facing API: session cookie, email-code sign-in, my bookings,
the sale opening at sale_opens_at, the line's status and the no-JavaScript waiting page.

Runs against the live server (real PostgreSQL and Redis)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, bearer, make_event, make_user
from tests.test_payments import wait_for

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
REFERENCE = re.compile(r"^[2-9A-HJKMNP-Z]{8}$")


@pytest.fixture
async def browser_client(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client that keeps cookies, as a browser does (one per test: one buyer)."""
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        yield client


def email() -> str:
    return f"buyer.{uuid.uuid4().hex[:12]}@example.com"


async def signup(client: httpx.AsyncClient, name: str = "Ada") -> dict[str, Any]:
    r = await client.post("/api/session/signup", json={"name": name, "email": email()})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_signup_starts_a_session_that_signing_out_ends(
    browser_client: httpx.AsyncClient, http: httpx.AsyncClient
) -> None:
    r = await browser_client.post("/api/session/signup", json={"name": "Ada", "email": email()})
    assert r.status_code == 201
    set_cookie = r.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie and "path=/" in set_cookie
    me = (await browser_client.get("/api/session")).json()["user"]
    assert me["name"] == "Ada"
    # The cookie is an identity for the API too: no bearer token needed.
    assert (await browser_client.get("/api/users/me")).json()["id"] == me["id"]
    stolen = browser_client.cookies.get("fs_session")
    assert stolen
    signed_out = await browser_client.delete("/api/session")
    assert signed_out.status_code == 200 and signed_out.json() == {"user": None}
    assert (await browser_client.get("/api/session")).json() == {"user": None}
    # A copy of the signed-out cookie no longer works: the session row is gone.
    http.cookies.set("fs_session", stolen)
    r = await http.get("/api/users/me")
    assert r.status_code == 401 and r.json()["type"].endswith("/session-expired")
    # A bearer token, when sent, is what counts (API clients), even beside a cookie.
    other = await make_user(http, "Bearer")
    r = await http.get("/api/users/me", headers=bearer(other))
    assert r.status_code == 200 and r.json()["id"] == other["id"]


async def test_sign_in_with_a_one_time_code(
    browser_client: httpx.AsyncClient, http: httpx.AsyncClient
) -> None:
    user = await make_user(http, "Grace")
    r = await browser_client.post("/api/session/code", json={"email": user["email"].upper()})
    assert r.status_code == 202
    code = r.json()["dev_code"]  # development: no mail is sent, the code is answered
    assert re.fullmatch(r"\d{6}", code)
    wrong = "000000" if code != "000000" else "111111"
    r = await browser_client.post("/api/session", json={"email": user["email"], "code": wrong})
    assert r.status_code == 401 and r.json()["type"].endswith("/invalid-code")
    r = await browser_client.post("/api/session", json={"email": user["email"], "code": code})
    assert r.status_code == 200 and r.json()["user"]["id"] == user["id"]
    assert (await browser_client.get("/api/users/me")).json()["email"] == user["email"]
    # Single use.
    r = await http.post("/api/session", json={"email": user["email"], "code": code})
    assert r.status_code == 401 and r.json()["type"].endswith("/code-expired")
    # An unknown email is answered the same way (no account probing), without a code.
    r = await http.post("/api/session/code", json={"email": email()})
    assert r.status_code == 202 and r.json()["dev_code"] is None


async def test_codes_and_guesses_are_limited(http: httpx.AsyncClient) -> None:
    user = await make_user(http, "Limited")
    for _ in range(5):
        assert (
            await http.post("/api/session/code", json={"email": user["email"]})
        ).status_code == 202
    r = await http.post("/api/session/code", json={"email": user["email"]})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    other = await make_user(http, "Guesser")
    code = (await http.post("/api/session/code", json={"email": other["email"]})).json()["dev_code"]
    wrong = "000000" if code != "000000" else "111111"
    statuses = [
        (await http.post("/api/session", json={"email": other["email"], "code": wrong})).status_code
        for _ in range(5)
    ]
    assert statuses == [401, 401, 401, 401, 429]
    # The right code no longer works after too many wrong ones.
    r = await http.post("/api/session", json={"email": other["email"], "code": code})
    assert r.status_code == 401


async def test_cookie_writes_from_another_site_are_refused(
    browser_client: httpx.AsyncClient,
) -> None:
    await signup(browser_client)
    r = await browser_client.delete("/api/session", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and r.json()["type"].endswith("/cross-origin")
    r = await browser_client.post(
        "/api/events/1/holds", json={"seat_ids": [1]}, headers={"Origin": "http://evil.example"}
    )
    assert r.status_code == 403
    assert (await browser_client.get("/api/session")).json()["user"] is not None


async def test_a_bearer_token_becomes_a_session(
    browser_client: httpx.AsyncClient, http: httpx.AsyncClient
) -> None:
    user = await make_user(http, "Legacy")
    r = await browser_client.post("/api/session", json={"token": user["token"]})
    assert r.status_code == 200
    assert (await browser_client.get("/api/users/me")).json()["id"] == user["id"]
    r = await http.post("/api/session", json={"token": "not-a-token"})
    assert r.status_code == 401
    r = await http.post("/api/session", json={"token": "x", "email": "a@b.co", "code": "123456"})
    assert r.status_code == 422


async def test_my_reservations_have_references_and_only_mine(
    browser_client: httpx.AsyncClient, http: httpx.AsyncClient
) -> None:
    event = await make_event(http, rows=1, seats_per_row=4)
    me = (await signup(browser_client, "Mine"))["user"]
    r = await browser_client.post(
        f"/api/events/{event['id']}/holds", json={"seat_ids": event["seat_ids"][:2]}
    )
    assert r.status_code == 201, r.text
    rid = r.json()["reservation_id"]
    other = await make_user(http, "Other")
    r = await http.post(
        f"/api/events/{event['id']}/holds",
        json={"seat_ids": event["seat_ids"][2:3]},
        headers=bearer(other),
    )
    assert r.status_code == 201
    listed = (await browser_client.get("/api/users/me/reservations")).json()["reservations"]
    assert [b["id"] for b in listed] == [rid]
    booking = listed[0]
    assert REFERENCE.match(booking["reference"]) and booking["status"] == "held"
    assert booking["event"]["name"] == event["name"] and len(booking["seats"]) == 2
    assert booking["links"]["page"] == f"/reservations/{rid}"
    detail = (await browser_client.get(f"/api/reservations/{rid}")).json()
    assert detail["reference"] == booking["reference"]
    assert me["id"] != other["id"]
    # API clients with a bearer token get the same list.
    theirs = (await http.get("/api/users/me/reservations", headers=bearer(other))).json()
    assert [b["event"]["id"] for b in theirs["reservations"]] == [event["id"]]
    assert (await http.get("/api/users/me/reservations")).status_code == 401


async def test_the_sale_follows_sale_opens_at(http: httpx.AsyncClient) -> None:
    event = await make_event(http, rows=1, seats_per_row=2)
    eid = event["id"]
    buyer = await make_user(http, "Early")
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = await http.patch(
        f"/api/admin/events/{eid}/waiting-room", json={"sale_opens_at": future}, headers=ADMIN
    )
    assert r.status_code == 200 and r.json()["status"] == "scheduled"
    hold = {"seat_ids": event["seat_ids"][:1]}
    r = await http.post(f"/api/events/{eid}/holds", json=hold, headers=bearer(buyer))
    assert r.status_code == 409 and r.json()["type"].endswith("/not-on-sale")
    # The opening time passes (set into the past here): on sale with nobody flipping a switch,
    # even though an admin had marked the event scheduled.
    r = await http.patch(f"/api/admin/events/{eid}", json={"status": "scheduled"}, headers=ADMIN)
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    r = await http.patch(
        f"/api/admin/events/{eid}/waiting-room", json={"sale_opens_at": past}, headers=ADMIN
    )
    assert r.json()["status"] == "on_sale"
    listed = {e["id"]: e for e in (await http.get("/api/events")).json()}
    assert listed[eid]["status"] == "on_sale"
    r = await http.post(f"/api/events/{eid}/holds", json=hold, headers=bearer(buyer))
    assert r.status_code == 201, r.text
    # Closed stays closed whatever the opening time says.
    await http.patch(f"/api/admin/events/{eid}", json={"status": "closed"}, headers=ADMIN)
    assert (await http.get(f"/api/events/{eid}")).json()["status"] == "closed"


async def test_line_status_and_the_no_script_waiting_page(
    browser_client: httpx.AsyncClient, http: httpx.AsyncClient
) -> None:
    event = await make_event(http, rows=1, seats_per_row=2, waiting_room=True)
    eid = event["id"]
    # No admissions (max_active reached by nobody yet, but admit nobody: a far opening).
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await http.patch(
        f"/api/admin/events/{eid}/waiting-room", json={"sale_opens_at": future}, headers=ADMIN
    )
    await signup(browser_client, "Waiter")
    r = await browser_client.post(f"/api/events/{eid}/queue")
    assert r.status_code == 201 and r.json()["pre_queue"] is True
    status = (await http.get(f"/api/events/{eid}/waiting-room")).json()
    assert status["state"] == "scheduled" and status["event"]["name"] == event["name"]
    assert status["line"]["waiting"] >= 1 and status["line"]["full"] is False
    page = await browser_client.get(f"/events/{eid}/waiting-room")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    html = page.text
    assert '<noscript><meta http-equiv="refresh" content="10"></noscript>' in html
    assert event["name"] in html and "Waiter" in html
    assert "Drawn at opening" in html and "proof-of-work" in html
    # Unknown event: a page in the site's look that says so, with a way back.
    unknown = await http.get("/events/999999999/waiting-room")
    assert unknown.status_code == 404 and "could not find this event" in unknown.text
    assert 'href="/"' in unknown.text
    # Closed: said plainly, with a way back.
    await http.patch(f"/api/admin/events/{eid}", json={"status": "closed"}, headers=ADMIN)
    closed = (await http.get(f"/events/{eid}/waiting-room")).text
    assert "waiting room is closed" in closed and 'href="/"' in closed


async def test_a_mistyped_address_gets_a_page_in_a_browser_and_json_in_the_api(
    http: httpx.AsyncClient,
) -> None:
    page = await http.get("/evnts/1", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "could not find that page" in page.text and 'href="/"' in page.text
    api = await http.get("/api/evnts/1", headers={"Accept": "text/html"})
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
    assert (await http.get("/evnts/1")).headers["content-type"] == "application/problem+json"


async def test_a_sold_out_sale_says_so_to_those_still_waiting(
    http: httpx.AsyncClient, rq_worker: subprocess.Popen[bytes]
) -> None:
    event = await make_event(http, rows=1, seats_per_row=1)
    eid = event["id"]
    assert (await http.get(f"/api/events/{eid}/waiting-room")).json()["state"] == "no_line"
    assert "choose your seats directly" in (await http.get(f"/events/{eid}/waiting-room")).text
    buyer = await make_user(http, "Last seat")
    r = await http.post(
        f"/api/events/{eid}/holds", json={"seat_ids": event["seat_ids"]}, headers=bearer(buyer)
    )
    rid = r.json()["reservation_id"]
    status = (await http.get(f"/api/events/{eid}/waiting-room")).json()
    assert status["state"] == "no_line"  # held, not sold: the seat may come back
    r = await http.post(
        f"/api/reservations/{rid}/payment", headers={**bearer(buyer), "Idempotency-Key": "last"}
    )
    assert r.status_code == 202
    assert (await wait_for(http, rid, buyer, {"succeeded", "failed"}))["status"] == "paid"
    deadline = time.monotonic() + 10  # the line status is shared for up to a second
    while (await http.get(f"/api/events/{eid}/waiting-room")).json()["state"] != "sold_out":
        assert time.monotonic() < deadline, "never sold out"
        await asyncio.sleep(0.2)
    page = (await http.get(f"/events/{eid}/waiting-room")).text
    assert "sold out" in page and 'href="/"' in page


async def test_my_place_gives_every_tab_the_ticket_and_the_window(
    browser_client: httpx.AsyncClient, http: httpx.AsyncClient
) -> None:
    event = await make_event(http, rows=1, seats_per_row=2, waiting_room=True)
    eid = event["id"]
    await http.patch(
        f"/api/admin/events/{eid}/waiting-room",
        json={"admission_window_seconds": 120},
        headers=ADMIN,
    )
    await signup(browser_client, "Tabs")
    mine = (await browser_client.get(f"/api/events/{eid}/waiting-room/me")).json()
    assert mine == {"ticket": None, "admitted": False, "admission_ends_at": None}
    ticket = (await browser_client.post(f"/api/events/{eid}/queue")).json()["ticket"]
    deadline = time.monotonic() + 20
    while not (mine := (await browser_client.get(f"/api/events/{eid}/waiting-room/me")).json())[
        "admitted"
    ]:
        assert time.monotonic() < deadline, mine
        await asyncio.sleep(0.3)
    assert mine["ticket"] == ticket
    # The window (120 s) outlives each admission token (60 s): pages count the window down.
    assert time.time() + 60 < mine["admission_ends_at"] <= time.time() + 121
    assert (await http.get(f"/api/events/{eid}/waiting-room/me")).status_code == 401
