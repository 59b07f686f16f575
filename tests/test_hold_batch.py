"""Holds sent together (booking/hold_batch.py, hold_seats_batch() of migration 007) on real
PostgreSQL: each request decided alone and in order inside the shared transaction, and a
process's racing holds sold at most once per seat however they were batched."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from booking.domain_errors import SeatsUnavailable
from booking.hold_batch import HoldBatcher
from booking.holds import Hold, create_hold

_BATCH = (
    "SELECT * FROM hold_seats_batch($1::bigint[], $2::bigint[], $3::int[], $4::bigint[], 600, 0)"
)


async def new_event(db: asyncpg.Pool, seats: int, cap: int | None = None) -> tuple[int, list[int]]:
    event = await db.fetchval(
        "INSERT INTO events (name, starts_at, max_seats_per_buyer)"
        " VALUES ('batch', now() + interval '1 day', $1) RETURNING id",
        cap,
    )
    rows = await db.fetch(
        "INSERT INTO seats (event_id, section, row_label, number, price_cents)"
        " SELECT $1, 'A', '1', i, 100 FROM generate_series(1, $2) i RETURNING id",
        event,
        seats,
    )
    return int(event), sorted(int(r["id"]) for r in rows)


async def new_buyers(db: asyncpg.Pool, count: int) -> list[int]:
    return [
        int(
            await db.fetchval(
                "INSERT INTO users (name, email, token_hash) VALUES ('B', $1, $2) RETURNING id",
                f"batch.{uuid.uuid4().hex}@example.com",
                uuid.uuid4().bytes,
            )
        )
        for _ in range(count)
    ]


async def test_each_request_is_decided_in_order_inside_the_batch(db: asyncpg.Pool) -> None:
    event, (s1, s2, s3, s4, s5, s6) = await new_event(db, 6, cap=3)
    a, b, c = await new_buyers(db, 3)
    requests: list[tuple[int, list[int]]] = [
        (a, [s1, s2]),  # held
        (b, [s2, s3]),  # s2 went to the first: refused, and s3 stays free
        (c, [s3]),  # held: the refusal before it wrote nothing
        (a, [s4, s5]),  # a would own 4 > cap 3
        (b, [s6, 10**12]),  # an unknown seat: refused, s6 stays free
        (c, [s6]),  # held
    ]
    rows = await db.fetch(
        _BATCH,
        [user for user, _ in requests],
        [event] * len(requests),
        [len(seats) for _, seats in requests],
        [seat for _, seats in requests for seat in seats],
    )
    got = [(r["request"], r["outcome"], r["seat_ids"] and list(r["seat_ids"])) for r in rows]
    assert got == [
        (1, "held", [s1, s2]),
        (2, "seats-unavailable", [s2]),
        (3, "held", [s3]),
        (4, "buyer-seat-cap", None),
        (5, "unknown-seats", [10**12]),
        (6, "held", [s6]),
    ]
    assert (rows[3]["cap"], rows[3]["owned"]) == (3, 2)
    held = await db.fetch(
        "SELECT r.user_id, rs.seat_id FROM reservations r JOIN reservation_seats rs"
        " ON rs.reservation_id = r.id WHERE r.event_id = $1 AND rs.active ORDER BY rs.seat_id",
        event,
    )
    assert [(r["user_id"], r["seat_id"]) for r in held] == [(a, s1), (a, s2), (c, s3), (c, s6)]
    amounts = {r["reservation_id"]: r["amount_cents"] for r in rows if r["outcome"] == "held"}
    assert sorted(amounts.values()) == [100, 100, 200]


class CountingPool:
    """The real pool, counting the calls the batcher makes (one per batch)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.calls: list[str] = []

    async def fetch(self, *args: Any) -> list[asyncpg.Record]:
        self.calls.append("batch")
        rows: list[asyncpg.Record] = await self.pool.fetch(*args)
        return rows

    async def fetchrow(self, *args: Any) -> asyncpg.Record | None:
        self.calls.append("one")
        return await self.pool.fetchrow(*args)


@pytest.mark.parametrize("max_in_flight", [1, 2, 8])
async def test_racing_holds_of_one_process_sell_each_seat_once(
    database_url: str, max_in_flight: int
) -> None:
    racers, seats_wanted = 60, 2
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=10)
    assert pool is not None
    try:
        event, seats = await new_event(pool, 20)
        buyers = await new_buyers(pool, racers)
        counting = CountingPool(pool)
        holds = HoldBatcher(counting, 600, 0, max_in_flight=max_in_flight)  # type: ignore[arg-type]

        async def hold(i: int) -> Hold | SeatsUnavailable:
            wanted = [seats[(3 * i) % 20], seats[(3 * i + 7) % 20]][:seats_wanted]
            try:
                return await create_hold(holds, buyers[i], event, wanted)
            except SeatsUnavailable as refused:
                return refused

        results = await asyncio.gather(*(hold(i) for i in range(racers)))
        held = [r for r in results if isinstance(r, Hold)]
        sold = [seat for h in held for seat in h.seat_ids]
        assert len(sold) == len(set(sold)), "a seat was held twice"
        assert held and len(held) + sum(isinstance(r, SeatsUnavailable) for r in results) == racers
        live = await pool.fetch(
            "SELECT rs.seat_id, r.id FROM reservations r JOIN reservation_seats rs"
            " ON rs.reservation_id = r.id WHERE r.event_id = $1 AND rs.active",
            event,
        )
        assert sorted(r["seat_id"] for r in live) == sorted(sold)
        assert {r["id"] for r in live} == {h.reservation_id for h in held}
        # The first max_in_flight went alone; the rest queued behind them into batches.
        assert counting.calls[:max_in_flight] == ["one"] * max_in_flight
        assert "batch" in counting.calls and len(counting.calls) < racers
    finally:
        await pool.close()
