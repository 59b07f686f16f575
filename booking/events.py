"""Events, their seats and the seat map (the query the seat cache sits in front of)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from booking.domain_errors import EventNotFound
from booking.sale import sale_status_sql
from booking.statuses import EventStatus, SeatStatus

# A seat's status is derived from its active reservation, never stored twice:
# paid → sold; held and not yet past expiry → held; otherwise available.
SEAT_STATUS_SQL = """
    CASE WHEN r.status = 'paid' THEN 'sold'
         WHEN r.status = 'held' AND r.expires_at > now() THEN 'held'
         ELSE 'available' END
"""
SEATS_WITH_STATUS_SQL = f"""
    SELECT s.id, s.event_id, s.section, s.row_label, s.number, s.price_cents,
           {SEAT_STATUS_SQL} AS status
      FROM seats s
      LEFT JOIN reservation_seats rs ON rs.seat_id = s.id AND rs.active
      LEFT JOIN reservations r ON r.id = rs.reservation_id
"""
SEAT_MAP_JSON_SQL = f"""
    SELECT coalesce(json_agg(json_build_object(
               'id', m.id, 'section', m.section, 'row', m.row_label, 'number', m.number,
               'price', m.price_cents, 'status', m.status) ORDER BY m.id), '[]')::text
      FROM ({SEATS_WITH_STATUS_SQL} WHERE s.event_id = $1) m
"""
EVENT_COLUMNS = f"""
    e.id, e.name, e.venue, e.starts_at, {sale_status_sql("e")} AS status, e.waiting_room_enabled,
    e.admit_per_second, e.max_active, e.admission_window_seconds, e.sale_opens_at,
    e.waiting_room_paused, e.pow_difficulty, e.max_seats_per_buyer
"""


@dataclass(frozen=True)
class SeatBlock:
    section: str
    rows: int
    seats_per_row: int
    price_cents: int


def _event_json(row: asyncpg.Record, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "venue": row["venue"],
        "starts_at": row["starts_at"].isoformat(),
        "status": row["status"],
        "sale_opens_at": row["sale_opens_at"].isoformat() if row["sale_opens_at"] else None,
        "waiting_room": {
            "enabled": row["waiting_room_enabled"],
            "admit_per_second": row["admit_per_second"],
            "max_active": row["max_active"],
            "admission_window_seconds": row["admission_window_seconds"],
            "paused": row["waiting_room_paused"],
            "pow_difficulty": row["pow_difficulty"],
        },
        # null: the server's MAX_SEATS_PER_BUYER applies; 0: no cap.
        "max_seats_per_buyer": row["max_seats_per_buyer"],
        "seats": {
            "available": counts.get(SeatStatus.AVAILABLE, 0),
            "held": counts.get(SeatStatus.HELD, 0),
            "sold": counts.get(SeatStatus.SOLD, 0),
            "total": sum(counts.values()),
        },
    }


async def _seat_counts(conn: asyncpg.Pool | asyncpg.Connection, event_ids: list[int]) -> Any:
    rows = await conn.fetch(
        f"SELECT m.event_id, m.status, count(*) AS n FROM ({SEATS_WITH_STATUS_SQL}"
        " WHERE s.event_id = ANY($1::bigint[])) m GROUP BY m.event_id, m.status",
        event_ids,
    )
    counts: dict[int, dict[str, int]] = {i: {} for i in event_ids}
    for r in rows:
        counts[r["event_id"]][r["status"]] = r["n"]
    return counts


async def list_events(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch(f"SELECT {EVENT_COLUMNS} FROM events e ORDER BY e.starts_at, e.id")
    counts = await _seat_counts(pool, [r["id"] for r in rows])
    return [_event_json(r, counts[r["id"]]) for r in rows]


async def get_event(pool: asyncpg.Pool, event_id: int) -> dict[str, Any]:
    row = await pool.fetchrow(f"SELECT {EVENT_COLUMNS} FROM events e WHERE e.id = $1", event_id)
    if row is None:
        raise EventNotFound(event_id)
    counts = await _seat_counts(pool, [event_id])
    return _event_json(row, counts[event_id])


async def set_event_status(
    pool: asyncpg.Pool | asyncpg.Connection, event_id: int, status: EventStatus
) -> None:
    updated = await pool.fetchval(
        "UPDATE events SET status = $2 WHERE id = $1 RETURNING id", event_id, status
    )
    if updated is None:
        raise EventNotFound(event_id)


async def set_buyer_cap(
    pool: asyncpg.Pool | asyncpg.Connection, event_id: int, max_seats_per_buyer: int | None
) -> None:
    """The event's own seat cap per buyer; None = the server's MAX_SEATS_PER_BUYER, 0 = none."""
    updated = await pool.fetchval(
        "UPDATE events SET max_seats_per_buyer = $2 WHERE id = $1 RETURNING id",
        event_id,
        max_seats_per_buyer,
    )
    if updated is None:
        raise EventNotFound(event_id)


async def load_seat_map(pool: asyncpg.Pool, event_id: int, delay_ms: int = 0) -> bytes:
    """The seat map as JSON bytes, built inside PostgreSQL.

    `delay_ms` adds a pg_sleep to model an expensive query (the stampede experiment's knob).
    """
    async with pool.acquire() as conn:
        if delay_ms > 0:
            await conn.execute("SELECT pg_sleep($1)", delay_ms / 1000)
        text = await conn.fetchval(SEAT_MAP_JSON_SQL, event_id)
    return str(text).encode()


async def create_event(
    pool: asyncpg.Pool,
    name: str,
    starts_at: datetime,
    blocks: list[SeatBlock],
    venue: str = "",
    waiting_room_enabled: bool = False,
    pow_difficulty: int = 0,
    max_seats_per_buyer: int | None = None,
) -> int:
    async with pool.acquire() as conn, conn.transaction():
        event_id: int = await conn.fetchval(
            "INSERT INTO events (name, venue, starts_at, waiting_room_enabled, pow_difficulty,"
            " max_seats_per_buyer) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            name,
            venue,
            starts_at,
            waiting_room_enabled,
            pow_difficulty,
            max_seats_per_buyer,
        )
        records = [
            (event_id, b.section, str(row), number, b.price_cents)
            for b in blocks
            for row in range(1, b.rows + 1)
            for number in range(1, b.seats_per_row + 1)
        ]
        await conn.copy_records_to_table(
            "seats",
            records=records,
            columns=["event_id", "section", "row_label", "number", "price_cents"],
        )
    return event_id
