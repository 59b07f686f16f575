"""Live status of every waiting room for the operator page: queue sizes, rate, estimate."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
from redis.asyncio import Redis

from waitingroom.eta import eta_seconds, parse_rate
from waitingroom.keys import RoomKeys


async def rooms_status(
    pool: asyncpg.Pool, redis: Redis, key_prefix: str = ""
) -> list[dict[str, Any]]:
    """One entry per event with a waiting room (closed sales too, last): settings from
    PostgreSQL, live numbers from Redis in one pipelined round trip."""
    rows = await pool.fetch(
        "SELECT id, name, status, waiting_room_paused, admit_per_second, max_active,"
        " admission_window_seconds FROM events WHERE waiting_room_enabled"
        " ORDER BY status = 'closed', starts_at, id"
    )
    now_ms = int(time.time() * 1000)
    async with redis.pipeline(transaction=False) as pipe:
        for row in rows:
            keys = RoomKeys(str(row["id"]), key_prefix)
            pipe.zcard(keys.queue)
            pipe.zcard(keys.pre)
            pipe.zcount(keys.active, f"({now_ms}", "+inf")
            pipe.hget(keys.rate, "ewma")
            pipe.exists(keys.paused)
        raw = await pipe.execute() if rows else []
    out: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        queue, pre, active, ewma, paused_key = raw[5 * i : 5 * i + 5]
        waiting = int(queue) + int(pre)
        rate = parse_rate(ewma, row["admit_per_second"])
        out.append(
            {
                "event_id": row["id"],
                "name": row["name"],
                "status": row["status"],
                # The key is what admission obeys; the column is its durable copy.
                "paused": bool(paused_key),
                "paused_recorded": row["waiting_room_paused"],
                "admit_per_second": row["admit_per_second"],
                "max_active": row["max_active"],
                "admission_window_seconds": row["admission_window_seconds"],
                "waiting": waiting,
                "active": int(active),
                "admitted_per_second": round(parse_rate(ewma, 0.0), 2),
                "last_in_line_eta_seconds": None if paused_key else eta_seconds(waiting, rate),
            }
        )
    return out
