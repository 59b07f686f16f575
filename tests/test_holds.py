"""Holds under concurrency, against the live server and the real PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import asyncpg
import httpx

from tests.conftest import bearer, make_event, make_user

RACERS = 200


async def test_200_clients_race_for_one_seat(http: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    event = await make_event(http, rows=1, seats_per_row=5)
    seat = event["seat_ids"][0]
    users = await asyncio.gather(*(make_user(http, f"Racer {i}") for i in range(RACERS)))

    async def hold(user: dict[str, object]) -> int:
        r = await http.post(
            f"/api/events/{event['id']}/holds", json={"seat_ids": [seat]}, headers=bearer(user)
        )
        return r.status_code

    statuses = Counter(await asyncio.gather(*(hold(u) for u in users)))
    assert statuses == {201: 1, 409: RACERS - 1}
    active = await db.fetchval(
        "SELECT count(*) FROM reservation_seats WHERE seat_id = $1 AND active", seat
    )
    assert active == 1


async def test_overlapping_multi_seat_holds_are_all_or_nothing(
    http: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    event = await make_event(http, rows=2, seats_per_row=10)
    seats = event["seat_ids"]
    rng = random.Random(7)
    requests = [rng.sample(seats, rng.randint(2, 5)) for _ in range(120)]
    users = await asyncio.gather(*(make_user(http, f"Multi {i}") for i in range(len(requests))))

    async def hold(user: dict[str, object], wanted: list[int]) -> tuple[int, list[int]]:
        r = await http.post(
            f"/api/events/{event['id']}/holds", json={"seat_ids": wanted}, headers=bearer(user)
        )
        return r.status_code, wanted

    results = await asyncio.gather(*(hold(u, w) for u, w in zip(users, requests, strict=True)))
    won = [wanted for status, wanted in results if status == 201]
    assert {status for status, _ in results} <= {201, 409}
    assert won, "at least the first hold must succeed"
    # No seat in two winning holds, and every winner got every seat it asked for.
    flat = [s for wanted in won for s in wanted]
    assert len(flat) == len(set(flat))
    rows = await db.fetch(
        "SELECT rs.reservation_id, rs.seat_id FROM reservation_seats rs"
        " JOIN reservations r ON r.id = rs.reservation_id"
        " WHERE r.event_id = $1 AND rs.active",
        event["id"],
    )
    by_reservation: dict[int, set[int]] = {}
    for r in rows:
        by_reservation.setdefault(r["reservation_id"], set()).add(r["seat_id"])
    assert sorted(map(sorted, by_reservation.values())) == sorted(map(sorted, won))
    assert len(rows) == len({r["seat_id"] for r in rows})


async def test_refused_hold_changes_nothing(http: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    event = await make_event(http, rows=1, seats_per_row=4)
    a, b, c = event["seat_ids"][:3]
    first, second = await make_user(http), await make_user(http)
    r = await http.post(
        f"/api/events/{event['id']}/holds", json={"seat_ids": [b]}, headers=bearer(first)
    )
    assert r.status_code == 201
    r = await http.post(
        f"/api/events/{event['id']}/holds", json={"seat_ids": [a, b, c]}, headers=bearer(second)
    )
    assert r.status_code == 409
    problem = r.json()
    assert problem["seat_ids"] == [b]
    assert r.headers["content-type"].startswith("application/problem+json")
    held = await db.fetchval(
        "SELECT count(*) FROM reservations WHERE event_id = $1 AND user_id = $2",
        event["id"],
        second["id"],
    )
    assert held == 0
    active = await db.fetch(
        "SELECT seat_id FROM reservation_seats WHERE seat_id = ANY($1::bigint[]) AND active",
        [a, b, c],
    )
    assert [r["seat_id"] for r in active] == [b]  # only the first buyer's seat is taken
    seat_map = (await http.get(f"/api/events/{event['id']}/seats")).json()
    status = {s["id"]: s["status"] for s in seat_map}
    # The map may be a stale copy from before the first hold (b then shows as available), but
    # no copy, stale or fresh, has a or c taken: the refused hold wrote nothing.
    assert status[a] == status[c] == "available"
    assert status[b] in ("available", "held")


async def test_cancel_releases_seats(http: httpx.AsyncClient) -> None:
    event = await make_event(http, rows=1, seats_per_row=3)
    seat = event["seat_ids"][0]
    user, other = await make_user(http), await make_user(http)
    r = await http.post(
        f"/api/events/{event['id']}/holds", json={"seat_ids": [seat]}, headers=bearer(user)
    )
    reservation = r.json()["reservation_id"]
    r = await http.delete(f"/api/reservations/{reservation}", headers=bearer(user))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = await http.delete(f"/api/reservations/{reservation}", headers=bearer(user))
    assert r.status_code == 409
    r = await http.post(
        f"/api/events/{event['id']}/holds", json={"seat_ids": [seat]}, headers=bearer(other)
    )
    assert r.status_code == 201


async def test_unknown_seats_are_named(http: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    event = await make_event(http, rows=1, seats_per_row=2)
    other = await make_event(http, rows=1, seats_per_row=1)
    user = await make_user(http)
    foreign, missing = other["seat_ids"][0], 9_000_000_000
    r = await http.post(
        f"/api/events/{event['id']}/holds",
        json={"seat_ids": [missing, event["seat_ids"][0], foreign]},
        headers=bearer(user),
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/unknown-seats")
    assert r.json()["seat_ids"] == sorted([foreign, missing])
    held = await db.fetchval("SELECT count(*) FROM reservations WHERE user_id = $1", user["id"])
    assert held == 0


async def test_taken_seats_are_named(http: httpx.AsyncClient) -> None:
    event = await make_event(http, rows=1, seats_per_row=4)
    a, b, _, d = event["seat_ids"]
    first, second = await make_user(http), await make_user(http)
    for seat in (d, b):
        r = await http.post(
            f"/api/events/{event['id']}/holds", json={"seat_ids": [seat]}, headers=bearer(first)
        )
        assert r.status_code == 201, r.text
    r = await http.post(
        f"/api/events/{event['id']}/holds", json={"seat_ids": [d, a, b]}, headers=bearer(second)
    )
    assert r.status_code == 409
    assert r.json()["type"].endswith("/seats-unavailable")
    assert r.json()["seat_ids"] == sorted([b, d])


async def overdue(db: asyncpg.Pool | asyncpg.Connection, reservation_id: int) -> None:
    """Move a hold's expiry into the past (as if HOLD_SECONDS had passed, no sweep yet)."""
    await db.execute(
        "UPDATE reservations SET expires_at = now() - interval '1 second' WHERE id = $1",
        reservation_id,
    )


async def test_an_overdue_hold_gives_way_to_a_new_one(
    http: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    event = await make_event(http, rows=1, seats_per_row=2)
    seat = event["seat_ids"][0]
    first, second = await make_user(http), await make_user(http)
    r = await http.post(
        f"/api/events/{event['id']}/holds", json={"seat_ids": [seat]}, headers=bearer(first)
    )
    old = r.json()["reservation_id"]
    await overdue(db, old)
    r = await http.post(
        f"/api/events/{event['id']}/holds", json={"seat_ids": [seat]}, headers=bearer(second)
    )
    assert r.status_code == 201, r.text
    assert await db.fetchval("SELECT status FROM reservations WHERE id = $1", old) == "expired"


async def test_a_refused_hold_leaves_overdue_holds_alone(
    http: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """All or nothing: a hold refused for a live hold writes nothing, not even the expiry of an
    overdue hold on its other seat (the sweeper's job then)."""
    event = await make_event(http, rows=1, seats_per_row=2)
    a, b = event["seat_ids"]
    first, second, third = await make_user(http), await make_user(http), await make_user(http)
    r = await http.post(
        f"/api/events/{event['id']}/holds", json={"seat_ids": [a]}, headers=bearer(first)
    )
    stale = r.json()["reservation_id"]
    r = await http.post(
        f"/api/events/{event['id']}/holds", json={"seat_ids": [b]}, headers=bearer(second)
    )
    assert r.status_code == 201
    async with db.acquire() as conn:
        # Overdue inside one transaction that then asks for the hold itself: the row stays locked
        # by it, so the workers' sweeps skip or wait for it, and only the refused hold could
        # have expired it. Rolled back at the end.
        tx = conn.transaction()
        await tx.start()
        try:
            await overdue(conn, stale)
            row = await conn.fetchrow(
                "SELECT * FROM hold_seats($1, $2, $3::bigint[], 600, 0)",
                int(third["id"]),
                event["id"],
                sorted([a, b]),
            )
            assert row is not None
            assert (row["outcome"], list(row["seat_ids"])) == ("seats-unavailable", [b])
            status = await conn.fetchval("SELECT status FROM reservations WHERE id = $1", stale)
            assert status == "held"
        finally:
            await tx.rollback()
