"""Scale-out, tested for real: two app processes and two RQ workers on one PostgreSQL and Redis.

Both apps run their admitter loop (ADMITTER_ENABLED=1) and a bounded in-process seat-cache tier
(the tier whose invalidation is per process), so what one process does must be seen by the other.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
import redis
from rq.job import Job

from tests.conftest import (
    ADMIN_TOKEN,
    TEST_REDIS_URL,
    bearer,
    free_port,
    make_event,
    make_user,
    start_server,
    start_worker,
    stop,
)
from waitingroom.keys import RoomKeys

QUEUE = "test-scale"
STALE_BOUND = 1.0
# A Redis db of the cluster's own: the session's other servers share the test database, and
# their admitters would otherwise admit from this cluster's queues too.
CLUSTER_REDIS_URL = TEST_REDIS_URL.rsplit("/", 1)[0] + "/6"
APP_ENV = {
    "REDIS_URL": CLUSTER_REDIS_URL,
    "RQ_QUEUE": QUEUE,
    "ADMITTER_ENABLED": "1",
    "SEAT_CACHE_STRATEGY": "ttl",
    "SEAT_CACHE_TTL_SECONDS": "1.0",
    "SEAT_CACHE_STALE_BOUND_SECONDS": str(STALE_BOUND),
    "SEAT_CACHE_CAPACITY": "64",  # the in-process tier: invalidated only in its own process
    "SEAT_CACHE_EVICTION": "lru",
}
# The provider's latency keeps each worker busy long enough that both take jobs (one payment
# at a time each: with PAYMENT_CONCURRENCY threads one process could take them all).
WORKER_ENV = {
    "REDIS_URL": CLUSTER_REDIS_URL,
    "RQ_QUEUE": QUEUE,
    "PAYMENT_LATENCY_MS": "300",
    "PAYMENT_CONCURRENCY": "1",
}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Cluster:
    a: httpx.AsyncClient
    b: httpx.AsyncClient
    redis: redis.Redis
    worker_names: list[str]

    @property
    def apps(self) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        return self.a, self.b


@pytest.fixture(scope="module")
def processes(database_url: str, redis_url: str) -> Iterator[tuple[str, str]]:
    procs: list[subprocess.Popen[bytes]] = []
    own = redis.Redis.from_url(CLUSTER_REDIS_URL)
    own.flushdb()
    try:
        ports = [free_port(), free_port()]
        for port in ports:
            procs.append(start_server(port, **APP_ENV))
        for _ in range(2):
            procs.append(start_worker(**WORKER_ENV))
        yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}"
        for proc in procs:
            assert proc.poll() is None, f"a process of the cluster died: {proc.args!r}"
    finally:
        for proc in procs:
            stop(proc)
        own.flushdb()
        own.close()


@pytest.fixture
async def cluster(processes: tuple[str, str]) -> AsyncIterator[Cluster]:
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=300)
    client = redis.Redis.from_url(CLUSTER_REDIS_URL)
    async with (
        httpx.AsyncClient(base_url=processes[0], timeout=60, limits=limits) as a,
        httpx.AsyncClient(base_url=processes[1], timeout=60, limits=limits) as b,
    ):
        yield Cluster(a, b, client, [])
    client.close()


async def make_users(http: httpx.AsyncClient, n: int) -> list[dict[str, Any]]:
    sem = asyncio.Semaphore(20)

    async def one(i: int) -> dict[str, Any]:
        async with sem:
            return await make_user(http, f"Scale {i}")

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def active_seat_rows(db: asyncpg.Pool, seat_ids: list[int]) -> list[Any]:
    return list(
        await db.fetch(
            "SELECT seat_id, reservation_id FROM reservation_seats"
            " WHERE active AND seat_id = ANY($1::bigint[]) ORDER BY seat_id",
            seat_ids,
        )
    )


async def test_single_seat_race_across_two_apps(cluster: Cluster, db: asyncpg.Pool) -> None:
    event = await make_event(cluster.a, rows=1, seats_per_row=5)
    seat = event["seat_ids"][0]
    users = await make_users(cluster.a, 200)

    responses = await asyncio.gather(
        *(
            cluster.apps[i % 2].post(
                f"/api/events/{event['id']}/holds", json={"seat_ids": [seat]}, headers=bearer(u)
            )
            for i, u in enumerate(users)
        )
    )
    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 1, 409: 199}, codes
    winner = next(r.json() for r in responses if r.status_code == 201)
    rows = await active_seat_rows(db, [seat])
    assert [(r["seat_id"], r["reservation_id"]) for r in rows] == [(seat, winner["reservation_id"])]


async def test_overlapping_multi_seat_holds_across_two_apps(
    cluster: Cluster, db: asyncpg.Pool
) -> None:
    event = await make_event(cluster.a, rows=1, seats_per_row=12)
    seats = event["seat_ids"]
    users = await make_users(cluster.b, 80)
    rng = random.Random(7)
    # Windows of 2-4 adjacent seats over 12 seats: heavy overlap, several disjoint winners.
    wanted: list[list[int]] = []
    for _ in users:
        size = rng.randint(2, 4)
        start = rng.randint(0, len(seats) - size)
        wanted.append(seats[start : start + size])

    responses = await asyncio.gather(
        *(
            cluster.apps[i % 2].post(
                f"/api/events/{event['id']}/holds", json={"seat_ids": want}, headers=bearer(u)
            )
            for i, (u, want) in enumerate(zip(users, wanted, strict=True))
        )
    )
    assert {r.status_code for r in responses} <= {201, 409}
    won = [
        (r.json(), want) for r, want in zip(responses, wanted, strict=True) if r.status_code == 201
    ]
    assert won, "somebody must win"
    held: Counter[int] = Counter()
    for body, want in won:
        assert sorted(body["seat_ids"]) == sorted(want)  # all of them, atomically
        held.update(body["seat_ids"])
    assert max(held.values()) == 1, f"a seat in two 201 answers: {held}"

    rows = await active_seat_rows(db, seats)
    per_seat = Counter(r["seat_id"] for r in rows)
    assert max(per_seat.values()) == 1, f"a seat in two active reservations: {per_seat}"
    by_reservation: dict[int, set[int]] = {}
    for r in rows:
        by_reservation.setdefault(r["reservation_id"], set()).add(r["seat_id"])
    assert by_reservation == {b["reservation_id"]: set(b["seat_ids"]) for b, _ in won}


def _metric_lines(text: str, name: str, event_id: int) -> list[str]:
    return [
        line
        for line in text.splitlines()
        if line.startswith(name) and f'event="{event_id}"' in line
    ]


async def test_one_admission_sequence_across_two_admitters(cluster: Cluster) -> None:
    admit_per_second, max_active, window = 3, 6, 2
    event = await make_event(cluster.a, rows=1, seats_per_row=5, waiting_room=True)
    eid = event["id"]
    keys = RoomKeys(str(eid))
    # A blocker fills max_active=1 for 120 s, so nobody is admitted while the 30 join.
    r = await cluster.a.patch(
        f"/api/admin/events/{eid}/waiting-room",
        json={
            "admit_per_second": admit_per_second,
            "max_active": 1,
            "admission_window_seconds": 120,
        },
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    blocker = await make_user(cluster.a, "Blocker")
    r = await cluster.a.post(f"/api/events/{eid}/queue", headers=bearer(blocker))
    assert r.status_code == 201
    deadline = time.monotonic() + 10
    while cluster.redis.zcard(keys.active) < 1:
        assert time.monotonic() < deadline, "the blocker was never admitted"
        await asyncio.sleep(0.05)

    users = await make_users(cluster.b, 30)
    positions: dict[int, int] = {}
    for i, user in enumerate(users):  # one at a time, alternating apps: a defined order
        r = await cluster.apps[i % 2].post(f"/api/events/{eid}/queue", headers=bearer(user))
        assert r.status_code == 201, r.text
        positions[user["id"]] = r.json()["position"]
    assert sorted(positions.values()) == list(range(1, 31))
    assert [positions[u["id"]] for u in users] == list(range(1, 31))

    # Open up: 3 per tick, at most 6 active (the blocker keeps one), windows of 2 s.
    r = await cluster.b.patch(
        f"/api/admin/events/{eid}/waiting-room",
        json={"max_active": max_active, "admission_window_seconds": window},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    seen: dict[str, float] = {}  # user -> admission expiry (ms)
    max_seen_active = 0
    end = time.monotonic() + 6
    while time.monotonic() < end:
        members: list[tuple[bytes, float]] = cluster.redis.zrange(  # type: ignore[assignment]
            keys.active, 0, -1, withscores=True
        )
        max_seen_active = max(max_seen_active, len(members))
        assert len(members) <= max_active, f"active set over max_active: {members!r}"
        for member, score in members:
            seen.setdefault(member.decode(), float(score))
        await asyncio.sleep(0.03)

    admitted = {u: s for u, s in seen.items() if u != str(blocker["id"])}
    # The expiry is (admission time + window): group the admissions by their tick second.
    per_tick = Counter(int((s - window * 1000) // 1000) for s in admitted.values())
    assert per_tick and max(per_tick.values()) <= admit_per_second, per_tick
    assert max_seen_active == max_active  # the cap was reached, and never passed
    assert len(admitted) >= 9, f"too few admissions in 6 s: {per_tick}"
    # FIFO across both admitters: exactly the first N positions, in order of admission.
    order = sorted(admitted, key=lambda u: admitted[u])
    by_position = sorted(positions, key=lambda u: positions[u])
    assert {int(u) for u in order} == set(by_position[: len(order)])

    # Both processes ran their admitter for this event (every tick refreshes the gauges),
    # and between them they admitted exactly the users seen in the active set (+ blocker).
    total = 0.0
    for http in cluster.apps:
        text = (await http.get("/metrics")).text
        assert _metric_lines(text, "waitingroom_queue_length", eid), "admitter not running"
        for line in _metric_lines(text, "waitingroom_admitted_total", eid):
            total += float(line.rsplit(" ", 1)[1])
    # (+1: the blocker; admissions go on after sampling ends, so allow a tick or two more)
    assert len(admitted) + 1 <= total <= len(admitted) + 1 + 2 * admit_per_second


async def test_same_idempotency_key_to_both_apps_pays_once(
    cluster: Cluster, db: asyncpg.Pool
) -> None:
    event = await make_event(cluster.a, rows=1, seats_per_row=8)
    users = await make_users(cluster.a, 6)
    holds = []
    for user, seat in zip(users, event["seat_ids"], strict=False):
        r = await cluster.b.post(
            f"/api/events/{event['id']}/holds", json={"seat_ids": [seat]}, headers=bearer(user)
        )
        assert r.status_code == 201, r.text
        holds.append((user, r.json()["reservation_id"]))

    requests = [
        cluster.apps[k % 2].post(
            f"/api/reservations/{rid}/payment",
            headers={**bearer(user), "Idempotency-Key": f"scale-pay-{rid}"},
        )
        for user, rid in holds
        for k in range(6)
    ]
    responses = await asyncio.gather(*requests)
    assert {r.status_code for r in responses} == {202}
    by_reservation: dict[int, set[int]] = {}
    for r in responses:
        body = r.json()
        by_reservation.setdefault(body["reservation_id"], set()).add(body["payment_id"])
    assert all(len(ids) == 1 for ids in by_reservation.values()), by_reservation

    deadline = time.monotonic() + 30
    pending = {rid for _, rid in holds}
    while pending and time.monotonic() < deadline:
        for user, rid in holds:
            if rid in pending:
                body = (
                    await cluster.a.get(f"/api/reservations/{rid}", headers=bearer(user))
                ).json()
                if body["status"] == "paid":
                    pending.discard(rid)
        await asyncio.sleep(0.1)
    assert not pending, f"not paid in time: {pending}"

    rows = await db.fetch(
        "SELECT reservation_id, count(*) AS n, bool_and(status = 'succeeded') AS ok"
        " FROM payments WHERE reservation_id = ANY($1::bigint[]) GROUP BY reservation_id",
        [rid for _, rid in holds],
    )
    assert len(rows) == len(holds) and all(r["n"] == 1 and r["ok"] for r in rows)
    # The jobs really ran on the two workers of this cluster.
    workers = set()
    for payment_ids in by_reservation.values():
        job = Job.fetch(f"payment-{next(iter(payment_ids))}", connection=cluster.redis)
        assert job.get_status() == "finished"
        workers.add((job.worker_name or "").rsplit(".", 1)[0])  # "<process>.<thread>"
    assert len(workers) == 2, f"payments were completed by {workers}"


async def test_seat_cache_staleness_bound_across_processes(cluster: Cluster) -> None:
    event = await make_event(cluster.a, rows=1, seats_per_row=6)
    eid, seat = event["id"], event["seat_ids"][2]
    user = await make_user(cluster.a)

    def status(seat_map: list[dict[str, Any]]) -> str:
        return str(next(s["status"] for s in seat_map if s["id"] == seat))

    # Warm both processes' caches (Redis and B's in-process tier) with "available".
    for _ in range(3):
        for http in cluster.apps:
            r = await http.get(f"/api/events/{eid}/seats")
            assert status(r.json()) == "available"

    r = await cluster.a.post(
        f"/api/events/{eid}/holds", json={"seat_ids": [seat]}, headers=bearer(user)
    )
    held_at = time.monotonic()
    assert r.status_code == 201, r.text
    deadline = held_at + STALE_BOUND + 3
    took = None
    while time.monotonic() < deadline:
        r = await cluster.b.get(f"/api/events/{eid}/seats")
        if status(r.json()) == "held":
            took = time.monotonic() - held_at
            break
        await asyncio.sleep(0.02)
    assert took is not None, "app B never showed the hold"
    assert took <= STALE_BOUND + 0.25, f"B showed the hold after {took:.3f}s"
