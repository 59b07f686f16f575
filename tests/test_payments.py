"""Payment through the real RQ worker: idempotency, expiry, ownership."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import bearer, free_port, make_event, make_user, start_server, stop

POLL_TIMEOUT_SECONDS = 30


async def wait_for(
    http: httpx.AsyncClient, reservation_id: int, user: dict[str, Any], done: set[str]
) -> dict[str, Any]:
    """Poll the reservation until its payment (or its status) reaches one of `done`."""
    deadline = time.monotonic() + POLL_TIMEOUT_SECONDS
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = (await http.get(f"/api/reservations/{reservation_id}", headers=bearer(user))).json()
        payment = body.get("payment") or {}
        if payment.get("status") in done or body.get("status") in done:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"reservation {reservation_id} never reached {done}: {body}")


async def hold_seats(
    http: httpx.AsyncClient, event: dict[str, Any], user: dict[str, Any], seats: list[int]
) -> dict[str, Any]:
    r = await http.post(
        f"/api/events/{event['id']}/holds", json={"seat_ids": seats}, headers=bearer(user)
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_same_payment_sent_20_times_pays_once(
    http: httpx.AsyncClient, db: asyncpg.Pool, rq_worker: subprocess.Popen[bytes]
) -> None:
    event = await make_event(http, rows=1, seats_per_row=4)
    user = await make_user(http)
    hold = await hold_seats(http, event, user, event["seat_ids"][:2])
    rid = hold["reservation_id"]
    headers = {**bearer(user), "Idempotency-Key": "pay-once-key"}
    responses = await asyncio.gather(
        *(http.post(f"/api/reservations/{rid}/payment", headers=headers) for _ in range(20))
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["payment_id"] for r in responses}) == 1
    body = await wait_for(http, rid, user, {"succeeded", "failed"})
    assert body["status"] == "paid" and body["payment"]["status"] == "succeeded"
    payments = await db.fetch("SELECT status FROM payments WHERE reservation_id = $1", rid)
    assert [p["status"] for p in payments] == ["succeeded"]
    # The same key afterwards answers with the settled result; a new key cannot pay again.
    again = await http.post(f"/api/reservations/{rid}/payment", headers=headers)
    assert again.status_code == 202 and again.json()["status"] == "succeeded"
    other_key = {**bearer(user), "Idempotency-Key": "another-key"}
    r = await http.post(f"/api/reservations/{rid}/payment", headers=other_key)
    assert r.status_code == 409
    seats = (await http.get(f"/api/events/{event['id']}")).json()["seats"]
    assert seats["sold"] == 2


async def test_users_cannot_touch_each_others_reservations(http: httpx.AsyncClient) -> None:
    event = await make_event(http, rows=1, seats_per_row=2)
    owner, intruder = await make_user(http, "Owner"), await make_user(http, "Intruder")
    rid = (await hold_seats(http, event, owner, event["seat_ids"][:1]))["reservation_id"]
    for method, path, extra in [
        ("GET", f"/api/reservations/{rid}", {}),
        ("POST", f"/api/reservations/{rid}/payment", {"Idempotency-Key": "k1"}),
        ("DELETE", f"/api/reservations/{rid}", {}),
        ("GET", f"/api/users/{owner['id']}", {}),
    ]:
        r = await http.request(method, path, headers={**bearer(intruder), **extra})
        assert r.status_code == 404, (method, path, r.text)
    r = await http.get(f"/api/reservations/{rid}", headers=bearer(owner))
    assert r.status_code == 200 and r.json()["status"] == "held"
    assert (await http.get(f"/api/users/{owner['id']}", headers=bearer(owner))).status_code == 200


@pytest.fixture(scope="module")
def short_hold_server(database_url: str, redis_url: str) -> Iterator[str]:
    """A second server whose holds last 2 s (same database, its own RQ queue and worker)."""
    from tests.conftest import start_worker

    port = free_port()
    env = {"HOLD_SECONDS": "2", "RQ_QUEUE": "test-short-holds", "PAYMENT_LATENCY_MS": "1500"}
    server = start_server(port, **env)
    worker = start_worker(**env)
    yield f"http://127.0.0.1:{port}"
    stop(server)
    stop(worker)


async def test_payment_keeps_its_hold_and_an_unpaid_hold_expires(
    short_hold_server: str, db: asyncpg.Pool
) -> None:
    async with httpx.AsyncClient(base_url=short_hold_server, timeout=30) as http:
        event = await make_event(http, rows=1, seats_per_row=3)
        user, idler, later = await make_user(http), await make_user(http), await make_user(http)
        seat, idle_seat = event["seat_ids"][:2]
        rid = (await hold_seats(http, event, user, [seat]))["reservation_id"]
        idle = (await hold_seats(http, event, idler, [idle_seat]))["reservation_id"]
        # Payment requested in time; the provider (1.5 s) finishes after the 2 s hold would
        # have ended: the accepted payment keeps the hold, so the buyer gets the seat.
        await asyncio.sleep(1.0)
        r = await http.post(
            f"/api/reservations/{rid}/payment", headers={**bearer(user), "Idempotency-Key": "late"}
        )
        assert r.status_code == 202
        body = await wait_for(http, rid, user, {"succeeded", "failed"})
        assert body["payment"]["status"] == "succeeded" and body["status"] == "paid"
        # The unpaid hold expires; the expiry schedule (or the sweeper) writes it down.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            status = await db.fetchval("SELECT status FROM reservations WHERE id = $1", idle)
            if status == "expired":
                break
            await asyncio.sleep(0.2)
        assert status == "expired"
        # Paying after expiry is refused and sells nothing; the seat is available to others.
        r = await http.post(
            f"/api/reservations/{idle}/payment", headers={**bearer(idler), "Idempotency-Key": "k2"}
        )
        assert r.status_code == 409
        sold = await db.fetchval(
            "SELECT count(*) FROM reservations WHERE event_id = $1 AND status = 'paid'",
            event["id"],
        )
        assert sold == 1
        again = await hold_seats(http, event, later, [idle_seat])
        assert again["seat_ids"] == [idle_seat]
