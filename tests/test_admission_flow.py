"""Waiting room → admission token → hold → payment, through the live server and a real worker."""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Any

import httpx

from tests.conftest import ADMIN_TOKEN, bearer, make_event, make_user
from tests.test_payments import wait_for

ADMIT_TIMEOUT_SECONDS = 20


async def poll_until_admitted(
    http: httpx.AsyncClient, event_id: int, ticket: str
) -> dict[str, Any]:
    deadline = time.monotonic() + ADMIT_TIMEOUT_SECONDS
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = await http.get(f"/api/events/{event_id}/queue/{ticket}")
        if r.status_code == 200:
            body = r.json()
            if body["status"] == "admitted":
                return body
        await asyncio.sleep(0.6)  # under the per-ticket poll limit
    raise AssertionError(f"ticket {ticket} not admitted in time: {body}")


async def test_hold_requires_admission_when_room_enabled(
    http: httpx.AsyncClient, rq_worker: subprocess.Popen[bytes]
) -> None:
    event = await make_event(http, rows=1, seats_per_row=6, waiting_room=True)
    eid = event["id"]
    r = await http.patch(
        f"/api/admin/events/{eid}/waiting-room",
        json={"admit_per_second": 5, "max_active": 2, "admission_window_seconds": 120},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert r.status_code == 200 and r.json()["waiting_room"]["max_active"] == 2
    alice, bob, carol = [await make_user(http, n) for n in ("Alice", "Bob", "Carol")]
    tickets = {}
    for user in (alice, bob, carol):
        r = await http.post(f"/api/events/{eid}/queue", headers=bearer(user))
        assert r.status_code == 201, r.text
        tickets[user["id"]] = r.json()["ticket"]
    seat = event["seat_ids"][0]

    # No token, then a token of someone else: 403 and nothing held.
    r = await http.post(
        f"/api/events/{eid}/holds", json={"seat_ids": [seat]}, headers=bearer(alice)
    )
    assert r.status_code == 403
    admitted_bob = await poll_until_admitted(http, eid, tickets[bob["id"]])
    r = await http.post(
        f"/api/events/{eid}/holds",
        json={"seat_ids": [seat]},
        headers={**bearer(alice), "X-Admission-Token": admitted_bob["admission_token"]},
    )
    assert r.status_code == 403 and r.json()["reason"] == "wrong_user"

    admitted_alice = await poll_until_admitted(http, eid, tickets[alice["id"]])
    # max_active = 2: Carol waits while Alice and Bob are active.
    r = await http.get(f"/api/events/{eid}/queue/{tickets[carol['id']]}")
    assert r.status_code in (200, 429)
    if r.status_code == 200:
        assert r.json()["status"] == "waiting"

    headers = {**bearer(alice), "X-Admission-Token": admitted_alice["admission_token"]}
    r = await http.post(f"/api/events/{eid}/holds", json={"seat_ids": [seat]}, headers=headers)
    assert r.status_code == 201, r.text
    rid = r.json()["reservation_id"]
    r = await http.post(
        f"/api/reservations/{rid}/payment", headers={**bearer(alice), "Idempotency-Key": "wr-pay"}
    )
    assert r.status_code == 202
    body = await wait_for(http, rid, alice, {"succeeded", "failed"})
    assert body["status"] == "paid"
    # A completed purchase frees Alice's slot at once, so Carol is admitted next.
    await poll_until_admitted(http, eid, tickets[carol["id"]])
    r = await http.post(
        f"/api/events/{eid}/holds",
        json={"seat_ids": [event["seat_ids"][1]]},
        headers=headers,
    )
    assert r.status_code == 403  # Alice's admission ended with her purchase


async def test_closing_a_sale_stops_holds_and_clears_its_waiting_room(
    http: httpx.AsyncClient,
) -> None:
    event = await make_event(http, rows=1, seats_per_row=4, waiting_room=True)
    eid = event["id"]
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    buyer = await make_user(http, "Late buyer")
    ticket = (await http.post(f"/api/events/{eid}/queue", headers=bearer(buyer))).json()["ticket"]
    admitted = await poll_until_admitted(http, eid, ticket)
    headers = {**bearer(buyer), "X-Admission-Token": admitted["admission_token"]}

    r = await http.patch(f"/api/admin/events/{eid}", json={"status": "closed"}, headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "closed"
    hold = {"seat_ids": event["seat_ids"][:1]}
    r = await http.post(f"/api/events/{eid}/holds", json=hold, headers=headers)
    assert r.status_code == 409 and r.json()["type"].endswith("/not-on-sale")
    assert (await http.post(f"/api/events/{eid}/queue", headers=bearer(buyer))).status_code == 409
    assert (await http.get(f"/api/events/{eid}/queue/{ticket}")).status_code == 404

    # Reopened: the old admission is gone with the room, so the buyer queues again.
    r = await http.patch(f"/api/admin/events/{eid}", json={"status": "on_sale"}, headers=admin)
    assert r.status_code == 200
    r = await http.post(f"/api/events/{eid}/holds", json=hold, headers=headers)
    assert r.status_code == 403
    ticket = (await http.post(f"/api/events/{eid}/queue", headers=bearer(buyer))).json()["ticket"]
    admitted = await poll_until_admitted(http, eid, ticket)
    headers = {**bearer(buyer), "X-Admission-Token": admitted["admission_token"]}
    r = await http.post(f"/api/events/{eid}/holds", json=hold, headers=headers)
    assert r.status_code == 201, r.text
