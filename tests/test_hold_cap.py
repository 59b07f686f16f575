"""The per-buyer seat cap under concurrency, at the domain level (booking.holds.create_hold on
real PostgreSQL): all at once, each hold in its own transaction on its own connection, or
together in the batches of one process (booking/hold_batch.py)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from booking.domain_errors import BuyerSeatCapReached
from booking.hold_batch import HoldBatcher
from booking.holds import Hold, create_hold

CAP = 4
RACERS = 12


async def new_event_and_buyer(db: asyncpg.Pool, seats: int) -> tuple[int, int, list[int]]:
    event = await db.fetchval(
        "INSERT INTO events (name, starts_at, max_seats_per_buyer)"
        " VALUES ('cap race', now() + interval '1 day', $1) RETURNING id",
        CAP,
    )
    seat_ids = [
        r["id"]
        for r in await db.fetch(
            "INSERT INTO seats (event_id, section, row_label, number, price_cents)"
            " SELECT $1, 'A', '1', i, 100 FROM generate_series(1, $2) i RETURNING id",
            event,
            seats,
        )
    ]
    buyer = await db.fetchval(
        "INSERT INTO users (name, email, token_hash) VALUES ('Cap', $1, $2) RETURNING id",
        f"cap.{uuid.uuid4().hex}@example.com",
        uuid.uuid4().bytes,
    )
    return event, buyer, sorted(seat_ids)


@pytest.mark.parametrize(
    ("max_batch", "max_in_flight"),
    [(1, RACERS), (4, 1), (RACERS, 1)],
    ids=["own-transactions", "batches-of-4", "batched"],
)
async def test_racing_holds_of_one_buyer_stay_within_the_cap(
    database_url: str, max_batch: int, max_in_flight: int
) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=RACERS, max_size=RACERS)
    assert pool is not None
    # max_batch 1: every hold its own transaction, racing on the cap's advisory lock; else the
    # first goes alone and the others queue behind it into batches.
    holds = HoldBatcher(pool, 600, 0, max_batch=max_batch, max_in_flight=max_in_flight)
    try:
        event, buyer, seats = await new_event_and_buyer(pool, 2 * RACERS)

        async def hold(i: int) -> Hold | BuyerSeatCapReached:
            try:
                return await create_hold(holds, buyer, event, seats[2 * i : 2 * i + 2])
            except BuyerSeatCapReached as refused:
                return refused

        results = await asyncio.gather(*(hold(i) for i in range(RACERS)))
        held = [r for r in results if isinstance(r, Hold)]
        refused = [r for r in results if isinstance(r, BuyerSeatCapReached)]
        assert len(held) == CAP // 2 and len(refused) == RACERS - CAP // 2
        assert all(r.facts == {"cap": CAP, "owned": CAP} for r in refused)
        live = await pool.fetchval(
            "SELECT count(*) FROM reservation_seats rs JOIN reservations r"
            " ON r.id = rs.reservation_id WHERE rs.active AND r.user_id = $1",
            buyer,
        )
        assert live == CAP
    finally:
        await pool.close()


async def test_the_cap_counts_what_the_buyer_already_holds(db: asyncpg.Pool) -> None:
    event, buyer, seats = await new_event_and_buyer(db, 6)
    holds = HoldBatcher(db, 600, 0)
    await create_hold(holds, buyer, event, seats[:3])
    with pytest.raises(BuyerSeatCapReached) as refused:
        await create_hold(holds, buyer, event, seats[3:5])
    assert refused.value.facts == {"cap": CAP, "owned": 3}
    hold = await create_hold(holds, buyer, event, seats[5:6])
    assert hold.amount_cents == 100 and hold.seat_ids == seats[5:6]
