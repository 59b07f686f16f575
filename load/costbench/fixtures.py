"""Benchmark data (users: load/accounts.py): events, queue tickets, data files for wrk."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

from load.harness import ADMIN_TOKEN
from waitingroom import RoomConfig, WaitingRoom

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def create_event(
    base_url: str, *, rows: int, seats_per_row: int, waiting_room: bool, name: str
) -> int:
    body = {
        "name": f"costbench {name}",
        "starts_at": "2030-01-01T20:00:00+00:00",
        "seats": [{"section": "A", "rows": rows, "seats_per_row": seats_per_row, "price": 5000}],
        "waiting_room_enabled": waiting_room,
    }
    resp = httpx.post(f"{base_url}/api/admin/events", json=body, headers=ADMIN, timeout=120)
    resp.raise_for_status()
    event_id = int(resp.json()["id"])
    if waiting_room:
        # One admission slot that is never freed: everyone else keeps waiting (and polling).
        room = {"admit_per_second": 1, "max_active": 1, "admission_window_seconds": 86_400}
        patch = httpx.patch(
            f"{base_url}/api/admin/events/{event_id}/waiting-room",
            json=room,
            headers=ADMIN,
            timeout=30,
        )
        patch.raise_for_status()
    return event_id


async def seat_ids(database_url: str, event_id: int) -> list[int]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT id FROM seats WHERE event_id = $1 ORDER BY id", event_id)
    finally:
        await conn.close()
    return [int(r["id"]) for r in rows]


def room_config(event_id: int) -> RoomConfig:
    return RoomConfig(str(event_id), True, 1, 1, 86_400)


async def join_tickets(redis_url: str, event_id: int, count: int) -> list[str]:
    """`count` synthetic buyers joined through the room's own join script (polls do not
    authenticate, so they need no database user)."""
    redis = Redis.from_url(redis_url)
    room = WaitingRoom(redis, "costbench-unused-secret")
    config = room_config(event_id)
    tickets: list[str] = []
    try:
        for start in range(0, count, 2000):
            batch = await asyncio.gather(
                *(room.join(config, 50_000_000 + i) for i in range(start, min(count, start + 2000)))
            )
            tickets.extend(t.ticket for t in batch)
    finally:
        await redis.aclose()
    return tickets


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


async def pg_xacts(database_url: str) -> int:
    """Committed + rolled back transactions of the benchmark's database so far."""
    conn = await asyncpg.connect(database_url)
    try:
        value = await conn.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"
        )
    finally:
        await conn.close()
    return int(value or 0)


async def redis_commands(redis_url: str) -> dict[str, int]:
    """Commands executed by the Redis server so far (INFO commandstats), by command."""
    redis = Redis.from_url(redis_url)
    try:
        stats: dict[str, Any] = await redis.info("commandstats")
    finally:
        await redis.aclose()
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
