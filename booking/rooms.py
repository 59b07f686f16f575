"""Per-event waiting-room configuration, stored in PostgreSQL, handed to `waitingroom`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from booking.domain_errors import EventNotFound
from booking.sale import sale_status_sql
from booking.statuses import EventStatus
from waitingroom.config import RoomConfig

ROOM_COLUMNS = (
    "id, waiting_room_enabled, admit_per_second, max_active, admission_window_seconds,"
    f" sale_opens_at, {sale_status_sql()} AS status, waiting_room_paused, pow_difficulty"
)


def _config(row: Any) -> RoomConfig:
    return RoomConfig(
        event_id=str(row["id"]),
        enabled=row["waiting_room_enabled"] and row["status"] != EventStatus.CLOSED,
        admit_per_second=row["admit_per_second"],
        max_active=row["max_active"],
        admission_window_seconds=row["admission_window_seconds"],
        sale_opens_at=row["sale_opens_at"],
        paused=row["waiting_room_paused"],
        pow_difficulty=row["pow_difficulty"],
    )


async def room_config(pool: asyncpg.Pool | asyncpg.Connection, event_id: int) -> RoomConfig | None:
    row = await pool.fetchrow(f"SELECT {ROOM_COLUMNS} FROM events WHERE id = $1", event_id)
    return None if row is None else _config(row)


async def sale_state(pool: asyncpg.Pool, event_id: int) -> tuple[EventStatus, RoomConfig]:
    """The event's sale status and waiting-room config in one read (EventNotFound)."""
    row = await pool.fetchrow(f"SELECT {ROOM_COLUMNS} FROM events WHERE id = $1", event_id)
    if row is None:
        raise EventNotFound(event_id)
    return EventStatus(row["status"]), _config(row)


async def enabled_room_configs(pool: asyncpg.Pool) -> list[RoomConfig]:
    rows = await pool.fetch(
        f"SELECT {ROOM_COLUMNS} FROM events WHERE waiting_room_enabled AND status <> 'closed'"
    )
    return [_config(r) for r in rows]


async def room_settings(conn: asyncpg.Pool | asyncpg.Connection, event_id: int) -> dict[str, Any]:
    """The operator-visible room settings (the before/after of an operator action);
    EventNotFound."""
    row = await conn.fetchrow(
        "SELECT status, waiting_room_enabled, waiting_room_paused, admit_per_second, max_active,"
        " admission_window_seconds, sale_opens_at, pow_difficulty, max_seats_per_buyer"
        " FROM events WHERE id = $1",
        event_id,
    )
    if row is None:
        raise EventNotFound(event_id)
    opens = row["sale_opens_at"]
    return {
        "status": row["status"],
        "enabled": row["waiting_room_enabled"],
        "paused": row["waiting_room_paused"],
        "admit_per_second": row["admit_per_second"],
        "max_active": row["max_active"],
        "admission_window_seconds": row["admission_window_seconds"],
        "sale_opens_at": opens.isoformat() if opens else None,
        "pow_difficulty": row["pow_difficulty"],
        "max_seats_per_buyer": row["max_seats_per_buyer"],
    }


async def set_paused(conn: asyncpg.Connection, event_id: int, paused: bool) -> None:
    await conn.execute("UPDATE events SET waiting_room_paused = $2 WHERE id = $1", event_id, paused)


async def update_room(
    pool: asyncpg.Pool | asyncpg.Connection,
    event_id: int,
    enabled: bool | None,
    admit_per_second: int | None,
    max_active: int | None,
    admission_window_seconds: int | None,
    sale_opens_at: datetime | None,
    clear_sale_opens_at: bool,
    pow_difficulty: int | None = None,
) -> None:
    row = await pool.fetchrow(
        "UPDATE events SET"
        " waiting_room_enabled = coalesce($2, waiting_room_enabled),"
        " admit_per_second = coalesce($3, admit_per_second),"
        " max_active = coalesce($4, max_active),"
        " admission_window_seconds = coalesce($5, admission_window_seconds),"
        " sale_opens_at = CASE WHEN $7 THEN NULL ELSE coalesce($6, sale_opens_at) END,"
        " pow_difficulty = coalesce($8, pow_difficulty)"
        " WHERE id = $1 RETURNING id",
        event_id,
        enabled,
        admit_per_second,
        max_active,
        admission_window_seconds,
        sale_opens_at,
        clear_sale_opens_at,
        pow_difficulty,
    )
    if row is None:
        raise EventNotFound(event_id)
