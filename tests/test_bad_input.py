"""Every endpoint answers bad input with a 4xx problem+json and changes nothing."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, bearer, make_event, make_user

HUGE = 2**70
BIG = "99999999999999999999"  # above PostgreSQL's bigint (issue 12: answered 500 before)
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DEEP = b"[" * 30_000 + b"]" * 30_000
LONG_INT = b"9" * 5_000


def new_event(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "x",
        "starts_at": "2030-01-01T00:00:00+00:00",
        "seats": [{"section": "A", "rows": 1, "seats_per_row": 1, "price": 1}],
    }
    body.update(changes)
    return body


def seats(*sections: str) -> list[dict[str, Any]]:
    return [{"section": s, "rows": 1, "seats_per_row": 1, "price": 1} for s in sections]


# (method, path template, headers kind, body (json object, raw bytes or None), expected status)
# Path templates use {event}, {seat}, {other_seat}, {reservation}; headers kind: none|user|admin.
CASES: list[tuple[str, str, str, Any, int]] = [
    ("POST", "/api/users", "none", b"{not json", 400),
    ("POST", "/api/users", "none", b"[1, 2]", 422),
    ("POST", "/api/users", "none", {"name": "", "email": "a@b.co"}, 422),
    ("POST", "/api/users", "none", {"name": "A", "email": "not-an-email"}, 422),
    ("POST", "/api/users", "none", {"name": 5, "email": "a@b.co"}, 422),
    ("POST", "/api/users", "none", {"name": "A"}, 422),
    ("POST", "/api/users", "none", {"name": "A" * 500, "email": "a@b.co"}, 422),
    ("POST", "/api/users", "none", {"name": "A", "email": "a@b.co", "admin": True}, 422),
    ("GET", "/api/users/1", "none", None, 401),
    ("GET", "/api/users/0", "user", None, 404),
    ("GET", f"/api/users/{HUGE}", "user", None, 404),
    ("GET", "/api/users/abc", "user", None, 404),
    ("GET", "/api/events/999999999", "none", None, 404),
    ("GET", f"/api/events/{HUGE}", "none", None, 404),
    ("GET", "/api/events/-1", "none", None, 404),
    ("GET", "/api/events/999999999/seats", "none", None, 404),
    ("POST", "/api/events/{event}/holds", "none", {"seat_ids": ["{seat}"]}, 401),
    ("POST", "/api/events/{event}/holds", "user", b"{", 400),
    ("POST", "/api/events/{event}/holds", "user", {"seat_ids": []}, 422),
    ("POST", "/api/events/{event}/holds", "user", {"seat_ids": ["{seat}", "{seat}"]}, 422),
    ("POST", "/api/events/{event}/holds", "user", {"seat_ids": [-1]}, 422),
    ("POST", "/api/events/{event}/holds", "user", {"seat_ids": [HUGE]}, 422),
    ("POST", "/api/events/{event}/holds", "user", {"seat_ids": ["1"]}, 422),
    ("POST", "/api/events/{event}/holds", "user", {"seat_ids": [1.5]}, 422),
    ("POST", "/api/events/{event}/holds", "user", {"seat_ids": [True]}, 422),
    ("POST", "/api/events/{event}/holds", "user", {"seat_ids": "{seat}"}, 422),
    ("POST", "/api/events/{event}/holds", "user", {"seats": ["{seat}"]}, 422),
    ("POST", "/api/events/{event}/holds", "user", {"seat_ids": list(range(1, 30))}, 422),
    ("POST", "/api/events/{event}/holds", "user", {"seat_ids": ["{seat}", 999999999]}, 422),
    ("POST", "/api/events/{event}/holds", "user", {"seat_ids": ["{other_seat}"]}, 422),
    ("POST", "/api/events/999999999/holds", "user", {"seat_ids": ["{seat}"]}, 404),
    ("GET", "/api/reservations/999999999", "user", None, 404),
    ("GET", "/api/reservations/{reservation}", "none", None, 401),
    ("POST", "/api/reservations/{reservation}/payment", "user", None, 400),
    ("POST", "/api/reservations/999999999/payment", "user+key", None, 404),
    ("DELETE", "/api/reservations/999999999", "user", None, 404),
    ("DELETE", f"/api/reservations/{HUGE}", "user", None, 404),
    ("POST", "/api/admin/events", "user", {"name": "x"}, 403),
    ("POST", "/api/admin/events", "admin", {"name": "x"}, 422),
    (
        "POST",
        "/api/admin/events",
        "admin",
        {
            "name": "x",
            "starts_at": "tomorrow",
            "seats": [{"section": "A", "rows": 1, "seats_per_row": 1, "price": 1}],
        },
        422,
    ),
    (
        "POST",
        "/api/admin/events",
        "admin",
        {
            "name": "x",
            "starts_at": "2030-01-01T00:00:00+00:00",
            "seats": [{"section": "A", "rows": 1, "seats_per_row": 1, "price": -5}],
        },
        422,
    ),
    ("PATCH", "/api/admin/events/{event}/waiting-room", "admin", {"max_active": 0}, 422),
    ("PATCH", "/api/admin/events/{event}/waiting-room", "admin", {"enabled": "yes"}, 422),
    ("PATCH", "/api/admin/events/999999999/waiting-room", "admin", {"enabled": True}, 404),
    ("PATCH", "/api/admin/events/{event}", "admin", {"status": "open"}, 422),
    ("PATCH", "/api/admin/events/{event}", "user", {"status": "closed"}, 403),
    ("PATCH", "/api/admin/events/999999999", "admin", {"status": "closed"}, 404),
    ("POST", "/api/events/{event}/queue", "none", None, 401),
    ("POST", "/api/events/999999999/queue", "user", None, 404),
    ("GET", "/api/events/{event}/queue/no-such-ticket", "none", None, 404),
    ("PUT", "/api/events", "none", None, 405),
    ("GET", "/api/nothing-here", "none", None, 404),
    # --- issue 12: every one of these answered 500 on main ------------------------------------
    ("GET", f"/api/events/{BIG}/queue/x", "none", None, 404),
    ("POST", f"/api/events/{BIG}/queue", "user", None, 404),
    ("DELETE", f"/api/events/{BIG}/queue/x", "user", None, 404),
    ("GET", f"/api/events/{2**63}/queue/x", "none", None, 404),
    ("GET", f"/api/events/{BIG}", "none", None, 404),
    ("GET", f"/api/events/{BIG}/seats", "none", None, 404),
    ("POST", f"/api/events/{BIG}/holds", "user", {"seat_ids": [1]}, 404),
    ("GET", f"/api/reservations/{BIG}", "user", None, 404),
    ("POST", f"/api/reservations/{BIG}/payment", "user+key", None, 404),
    ("PATCH", f"/api/admin/events/{BIG}", "admin", {"status": "closed"}, 404),
    ("PATCH", f"/api/admin/events/{BIG}/waiting-room", "admin", {"enabled": True}, 404),
    ("GET", f"/events/{BIG}/seats", "none", None, 404),
    ("GET", f"/reservations/{BIG}", "none", None, 404),
    ("GET", "/api/events/abc/queue/x", "none", None, 404),
    ("GET", "/api/events/1e3", "none", None, 404),
    ("POST", "/api/users", "none", {"name": "A\x00B", "email": "a@b.co"}, 422),
    ("POST", "/api/users", "none", {"name": "A", "email": "a\x00@b.co"}, 422),
    ("POST", "/api/users", "none", {"name": "bell\x07", "email": "a@b.co"}, 422),
    ("POST", "/api/users", "none", {"name": "del\x7f", "email": "a@b.co"}, 422),
    ("POST", "/api/users", "none", {"name": "nel\x85", "email": "a@b.co"}, 422),
    ("POST", "/api/users", "none", {"name": "tab\tname", "email": "a@b.co"}, 422),
    ("POST", "/api/users", "none", b'{"name": "\\ud800", "email": "a@b.co"}', 400),
    ("POST", "/api/users", "none", b'{"name": ' + DEEP + b', "email": "a@b.co"}', 400),
    ("POST", "/api/users", "none", DEEP, 400),
    (
        "POST",
        "/api/users",
        "none",
        b'{"name": "A", "email": "a@b.co", "n": ' + LONG_INT + b"}",
        400,
    ),
    ("POST", "/api/users", "none", b"", 422),
    ("POST", "/api/events/{event}/holds", "user", b'{"seat_ids": [' + LONG_INT + b"]}", 400),
    ("POST", "/api/admin/events", "admin", new_event(name="nul\x00"), 422),
    ("POST", "/api/admin/events", "admin", new_event(venue="nul\x00"), 422),
    ("POST", "/api/admin/events", "admin", new_event(seats=seats("A\x00")), 422),
    ("POST", "/api/admin/events", "admin", new_event(seats=seats("A", "B", "A")), 422),
    ("POST", "/api/admin/events", "admin", new_event(starts_at="0001-01-01T00:30+01:00"), 422),
    ("POST", "/api/admin/events", "admin", new_event(starts_at="9999-12-31T23:30-01:00"), 422),
    # asyncpg stores datetime.min as -infinity: refused rather than changed (found by fuzzing)
    ("POST", "/api/admin/events", "admin", new_event(starts_at="0001-01-01T00:00:00Z"), 422),
    ("POST", "/api/admin/events", "admin", new_event(starts_at="1969-12-31T23:59:59Z"), 422),
    ("POST", "/api/admin/events", "admin", new_event(starts_at="2030-01-01T00:00:00"), 422),
    ("POST", "/api/admin/events", "admin", b'{"name": ' + DEEP + b"}", 400),
    (
        "PATCH",
        "/api/admin/events/{event}/waiting-room",
        "admin",
        {"sale_opens_at": "0001-01-01T00:30+01:00"},
        422,
    ),
]
# HTML pages answer an unknown id with their own 404 page, not problem+json.
HTML_CASES: list[tuple[str, int]] = [
    (f"/events/{BIG}/waiting-room", 404),
    (f"/events/{2**63}/waiting-room", 404),
]


def _fill(value: Any, ids: dict[str, int]) -> Any:
    if isinstance(value, str):
        for name, number in ids.items():
            if value == "{" + name + "}":
                return number
        return value.format(**ids) if "{" in value else value
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


@pytest.fixture
async def world(http: httpx.AsyncClient) -> dict[str, Any]:
    event = await make_event(http, rows=1, seats_per_row=3)
    other = await make_event(http, rows=1, seats_per_row=1)
    user = await make_user(http)
    holder = await make_user(http)
    r = await http.post(
        f"/api/events/{event['id']}/holds",
        json={"seat_ids": [event["seat_ids"][2]]},
        headers=bearer(holder),
    )
    assert r.status_code == 201
    ids = {
        "event": event["id"],
        "seat": event["seat_ids"][0],
        "other_seat": other["seat_ids"][0],
        "reservation": r.json()["reservation_id"],
    }
    return {"ids": ids, "user": user, "holder": holder}


async def _counts(db: asyncpg.Pool) -> tuple[int, ...]:
    row = await db.fetchrow(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM events),"
        " (SELECT count(*) FROM reservations), (SELECT count(*) FROM reservation_seats),"
        " (SELECT count(*) FROM payments),"
        " (SELECT count(*) FROM reservations WHERE status <> 'held')"
    )
    assert row is not None
    return tuple(row)


async def test_bad_input_table(
    http: httpx.AsyncClient, db: asyncpg.Pool, world: dict[str, Any]
) -> None:
    ids = world["ids"]
    before = await _counts(db)
    failures = []
    for method, template, who, body, expected in CASES:
        path = _fill(template, ids)
        headers: dict[str, str] = {}
        if who.startswith("user"):
            headers.update(bearer(world["holder"] if "reservation" in template else world["user"]))
        if who == "user+key":
            headers["Idempotency-Key"] = "bad-input"
        if who == "admin":
            headers.update(ADMIN)
        kwargs: dict[str, Any] = {"headers": headers}
        if isinstance(body, bytes):
            kwargs["content"] = body
            headers["Content-Type"] = "application/json"
        elif body is not None:
            kwargs["json"] = _fill(body, ids)
        r = await http.request(method, path, **kwargs)
        problem = r.json() if r.headers.get("content-type", "").startswith("application/") else {}
        ok = (
            r.status_code == expected
            and r.headers["content-type"].startswith("application/problem+json")
            and {"type", "title", "status", "detail"} <= set(problem)
            and problem["status"] == expected
        )
        if not ok:
            failures.append((method, path, expected, r.status_code, r.text[:200]))
    assert not failures, "\n".join(map(str, failures))
    for path, expected in HTML_CASES:
        r = await http.get(path)
        assert r.status_code == expected, (path, r.status_code)
        assert r.headers["content-type"].startswith("text/html"), path
    assert await _counts(db) == before
