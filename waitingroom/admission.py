"""Admission: the per-second tick (one Lua call) and the admitter loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from waitingroom.config import RoomConfig
from waitingroom.keys import RoomKeys
from waitingroom.scripts import Scripts

log = logging.getLogger(__name__)


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class Admitted:
    user_id: str
    joined_ms: int
    position_at_join: int | None  # None for pre-queue joiners (no prediction was made)
    rate_at_join: float


class Ticker(Protocol):
    """What the admitter loop needs of a room (WaitingRoom answers it; admission does not import
    room, so the dependency runs one way: room -> admission)."""

    clock: Callable[[], float]

    async def admit_tick(self, config: RoomConfig) -> list[str]: ...


@dataclass(frozen=True)
class TickOutcome:
    expired: int
    queue_length: int  # queue plus pre-queue
    active: int
    admitted: list[Admitted] = field(default_factory=list)


def _parse_joined(user_id: str, raw: str) -> Admitted:
    # Format written by the join script: "join_ms|position|rate" (position -1 = pre-queue).
    try:
        joined, pos, rate = raw.split("|")
        position = int(pos)
        return Admitted(user_id, int(joined), position if position > 0 else None, float(rate))
    except ValueError:
        return Admitted(user_id, 0, None, 0.0)


async def tick(
    scripts: Scripts,
    keys: RoomKeys,
    config: RoomConfig,
    *,
    now: float,
    alpha: float,
) -> TickOutcome:
    now_ms = int(now * 1000)
    res = await scripts.run(
        scripts.admit,
        keys=[
            keys.queue,
            keys.pre,
            keys.opened,
            keys.active,
            keys.tick,
            keys.rate,
            keys.joined,
            keys.qtail,
            keys.opening,
            keys.gone,
            keys.paused,
        ],
        args=[
            now_ms,
            math.floor(now),
            config.admit_per_second,
            config.max_active,
            config.admission_window_seconds * 1000,
            config.opens_at_ms(),
            alpha,
        ],
    )
    admitted = [_parse_joined(_s(res[i]), _s(res[i + 1])) for i in range(5, len(res), 2)]
    # res[0] says whether this call ran the second's tick; the outcome is used either way.
    return TickOutcome(
        expired=int(res[1]),
        queue_length=int(res[2]) + int(res[4]),
        active=int(res[3]),
        admitted=admitted,
    )


async def run_admitter(
    room: Ticker,
    get_configs: Callable[[], Awaitable[list[RoomConfig]]],
    stop: asyncio.Event,
    *,
    tick_timeout: float = 0.8,
) -> None:
    """Tick every enabled event once per second until `stop` is set.

    Safe to run in every app process at once: the admission script admits at most once per
    (event, second), so extra loops only refresh the gauges. Errors are logged and the loop
    goes on (a Redis blip must not stop admissions for good).
    """
    while not stop.is_set():
        try:
            configs = await asyncio.wait_for(get_configs(), timeout=tick_timeout)
            enabled = [c for c in configs if c.enabled]
            results = await asyncio.gather(
                *(asyncio.wait_for(room.admit_tick(c), timeout=tick_timeout) for c in enabled),
                return_exceptions=True,
            )
            for config, result in zip(enabled, results, strict=True):
                if isinstance(result, BaseException):
                    log.warning("admission tick failed for event %s: %r", config.event_id, result)
        except Exception:
            log.exception("admitter iteration failed")
        # Wake just after the next second boundary so all processes aim at the same tick.
        now = room.clock()
        delay = 1.0 - (now % 1.0) + 0.005
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
