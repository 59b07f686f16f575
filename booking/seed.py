"""The demo event `make run` seeds once: a few hundred seats, waiting room on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from booking.events import SeatBlock, create_event

DEMO_EVENT_NAME = "Demo Flash Sale: The Redis Quartet Live"


def demo_blocks(total_seats: int) -> list[SeatBlock]:
    """Split `total_seats` over three price sections of 20-seat rows."""
    per_row = 20
    rows = max(1, total_seats // per_row)
    floor = max(1, rows // 5)
    lower = max(1, (rows - floor) // 2)
    upper = max(1, rows - floor - lower)
    return [
        SeatBlock("Floor", floor, per_row, 15_000),
        SeatBlock("Lower", lower, per_row, 9_000),
        SeatBlock("Upper", upper, per_row, 5_000),
    ]


async def seed_demo(
    pool: asyncpg.Pool, total_seats: int, pow_difficulty: int = 0
) -> tuple[int, bool]:
    """(event id, created now). Idempotent: an existing demo event is left as it is."""
    existing = await pool.fetchval("SELECT id FROM events WHERE name = $1", DEMO_EVENT_NAME)
    if existing is not None:
        return int(existing), False
    event_id = await create_event(
        pool,
        DEMO_EVENT_NAME,
        datetime.now(UTC) + timedelta(days=30),
        demo_blocks(total_seats),
        venue="Loopback Arena",
        waiting_room_enabled=True,
        pow_difficulty=pow_difficulty,
    )
    return event_id, True
