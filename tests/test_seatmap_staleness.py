"""The seat map served through each cache strategy is never staler than the configured bound,
while seats are being booked: checked end to end against a live server per strategy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import bearer, free_port, make_event, make_user, start_server, stop

STALE_BOUND_SECONDS = 1.0
READ_SECONDS = 4.0
READERS = 8
# Client-side clocks see the hold's 201 after its commit and invalidation: no slack needed
# beyond the scheduling of this very process.
SLACK_SECONDS = 0.05


@pytest.fixture(params=["ttl", "lock", "singleflight", "xfetch", "xfetch-pure", "swr"])
def strategy_server(
    request: pytest.FixtureRequest, database_url: str, redis_url: str
) -> Iterator[str]:
    port = free_port()
    proc = start_server(
        port,
        SEAT_CACHE_STRATEGY=request.param,
        SEAT_CACHE_TTL_SECONDS="0.5",
        SEAT_CACHE_STALE_BOUND_SECONDS=str(STALE_BOUND_SECONDS),
        SEAT_QUERY_DELAY_MS="50",
        RQ_QUEUE="test-staleness",
    )
    yield f"http://127.0.0.1:{port}"
    stop(proc)


async def test_seat_map_within_staleness_bound_while_booking(strategy_server: str) -> None:
    async with httpx.AsyncClient(base_url=strategy_server, timeout=30) as http:
        event = await make_event(http, rows=1, seats_per_row=30)
        users = [await make_user(http) for _ in range(6)]
        held_at: dict[int, float] = {}  # seat id -> when its hold's 201 arrived
        deadline = time.monotonic() + READ_SECONDS
        violations: list[str] = []
        reads = 0

        async def book() -> None:
            for i, seat in enumerate(event["seat_ids"]):
                if time.monotonic() > deadline - STALE_BOUND_SECONDS:
                    return
                r = await http.post(
                    f"/api/events/{event['id']}/holds",
                    json={"seat_ids": [seat]},
                    headers=bearer(users[i % len(users)]),
                )
                assert r.status_code == 201, r.text
                held_at[seat] = time.monotonic()
                await asyncio.sleep(0.05)

        async def read() -> None:
            nonlocal reads
            while time.monotonic() < deadline:
                started = time.monotonic()
                known = dict(held_at)
                r = await http.get(f"/api/events/{event['id']}/seats")
                assert r.status_code == 200
                reads += 1
                age = int(r.headers["x-cache-age-ms"]) / 1000
                source = r.headers["x-cache"]
                # A "load" is this request's own database read: its age is only the query's time.
                if source != "load" and age > STALE_BOUND_SECONDS:
                    violations.append(f"served a map {age:.3f}s old ({source})")
                status = {s["id"]: s["status"] for s in r.json()}
                for seat, t in known.items():
                    if t < started - STALE_BOUND_SECONDS - SLACK_SECONDS and (
                        status[seat] == "available"
                    ):
                        violations.append(
                            f"seat {seat} held {started - t:.3f}s ago shown free ({source})"
                        )

        await asyncio.gather(book(), *(read() for _ in range(READERS)))
        assert len(held_at) >= 3  # enough bookings happened to test anything
        assert reads > 20
        assert not violations, violations[:5]
