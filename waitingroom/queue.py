"""Queue operations (join, poll, remove): one Lua round trip each, parsed into plain values."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from waitingroom.errors import JoinRefused
from waitingroom.keys import RoomKeys
from waitingroom.revocations import REVOCATION_CHANNEL
from waitingroom.scripts import Scripts
from waitingroom.throttle import JoinGuard

RawStatus = Literal["waiting", "pre", "admitted", "expired"]


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class JoinRaw:
    ticket: str
    status: RawStatus
    position: int | None
    rate: str
    pre_count: int
    created: bool
    score: int  # queue score (0 unless waiting in the queue)
    opening: bool  # the pre-queue is still being moved into the queue


@dataclass(frozen=True)
class PollRaw:
    user_id: str
    status: RawStatus
    position: int | None
    rate: str
    pre_count: int
    expires_at_ms: int
    score: int = 0  # queue score (0 unless waiting in the queue)


@dataclass(frozen=True)
class Limited:
    retry_after_ms: int


def _status(raw: Any) -> RawStatus:
    value = _s(raw)
    if value not in ("waiting", "pre", "admitted", "expired"):
        raise ValueError(f"unexpected status from Lua: {value!r}")
    return value  # type: ignore[return-value]


def _position(raw: Any) -> int | None:
    pos = int(raw)
    return pos if pos > 0 else None


@functools.lru_cache(maxsize=4096)
def _join_keys(keys: RoomKeys) -> tuple[str, ...]:
    # Built once per event: a join is on the surge path, and these never change.
    return (
        keys.seq,
        keys.queue,
        keys.pre,
        keys.opened,
        keys.active,
        keys.users,
        keys.tickets,
        keys.joined,
        keys.rate,
        keys.qtail,
        keys.opening,
        keys.epoch,
    )


async def join(
    scripts: Scripts,
    keys: RoomKeys,
    *,
    user_id: str,
    new_ticket: str,
    now_ms: int,
    opens_at_ms: int,
    pre_key: int,
    admit_per_second: int,
    guard: JoinGuard | None = None,
) -> JoinRaw:
    """Raises JoinRefused when the `guard` (bot defence) refuses: nobody is queued then."""
    args: list[Any] = [user_id, new_ticket, now_ms, opens_at_ms, pre_key, admit_per_second]
    room_keys: Sequence[str] = _join_keys(keys)
    guard_keys = [] if guard is None else guard.keys()
    if guard is not None and guard_keys:
        room_keys = [*room_keys, *(keys.prefix + key for key in guard_keys)]
        args.extend(guard.args())
    res = await scripts.run(scripts.join, keys=room_keys, args=args)
    if len(res) == 2:
        raise JoinRefused(_s(res[0]), int(res[1]))
    return JoinRaw(
        ticket=_s(res[0]),
        status=_status(res[1]),
        position=_position(res[2]),
        rate=_s(res[3]),
        pre_count=int(res[4]),
        created=bool(int(res[5])),
        score=int(res[6]),
        opening=bool(int(res[7])),
    )


async def poll(
    scripts: Scripts,
    keys: RoomKeys,
    *,
    ticket: str,
    now_ms: int,
    opens_at_ms: int,
    admit_per_second: int,
    poll_limit: int,
) -> PollRaw | Limited | None:
    """None for an unknown ticket."""
    res = await scripts.run(
        scripts.poll,
        keys=[
            keys.tickets,
            keys.queue,
            keys.pre,
            keys.opened,
            keys.active,
            keys.rate,
            keys.poll_limit(ticket),
            keys.qtail,
            keys.opening,
        ],
        args=[ticket, now_ms, opens_at_ms, admit_per_second, poll_limit],
    )
    code = _s(res[0])
    if code == "unknown":
        return None
    if code == "limited":
        return Limited(retry_after_ms=int(res[2]))
    return PollRaw(
        user_id=_s(res[1]),
        status=_status(res[2]),
        position=_position(res[3]),
        rate=_s(res[4]),
        pre_count=int(res[5]),
        expires_at_ms=int(float(_s(res[6]))),
        score=int(res[7]),
    )


async def remove(scripts: Scripts, keys: RoomKeys, user_id: str) -> tuple[bool, bool]:
    """Drop the user from every structure; returns (was_active, was_waiting)."""
    res = await scripts.run(
        scripts.remove,
        keys=[
            keys.users,
            keys.tickets,
            keys.queue,
            keys.pre,
            keys.active,
            keys.joined,
            keys.gone,
            keys.gone_version,
        ],
        args=[user_id, keys.prefix + REVOCATION_CHANNEL, keys.event_id],
    )
    return bool(int(res[0])), bool(int(res[1]))


async def open_step(
    scripts: Scripts, keys: RoomKeys, *, now_ms: int, opens_at_ms: int, chunk: int
) -> tuple[int, int]:
    """Move at most `chunk` pre-queue members into the queue; returns (moved, still_pre).

    (0, 0) when no move is in progress (not due, already done, or nobody pre-queued)."""
    res = await scripts.run(
        scripts.open_step,
        keys=[
            keys.pre,
            keys.queue,
            keys.opened,
            keys.qtail,
            keys.opening,
            keys.gone,
            keys.gone_version,
        ],
        args=[now_ms, opens_at_ms, chunk],
    )
    return int(res[0]), int(res[1])


@dataclass(frozen=True)
class SnapshotRaw:
    epoch: str
    head: int  # lowest score still waiting (or tail + 1)
    tail: int  # highest score handed out or reserved
    gone_version: str
    pre_count: int
    open_end: int  # end of the reserved pre-queue range while it moves, else -1
    open_gap: int  # reserved scores whose pre-queue member left before the move
    rate: str
    gone: list[int] | None  # None: unchanged since `known_gone_version`


async def snapshot(scripts: Scripts, keys: RoomKeys, known_gone_version: str) -> SnapshotRaw:
    res = await scripts.run(
        scripts.snapshot,
        keys=[
            keys.epoch,
            keys.queue,
            keys.qtail,
            keys.opening,
            keys.pre,
            keys.gone,
            keys.gone_version,
            keys.rate,
        ],
        args=[known_gone_version],
    )
    gone_version = _s(res[3])
    return SnapshotRaw(
        epoch=_s(res[0]),
        head=int(res[1]),
        tail=int(res[2]),
        gone_version=gone_version,
        pre_count=int(res[4]),
        open_end=int(res[5]),
        open_gap=int(res[6]),
        rate=_s(res[7]),
        gone=None if gone_version == known_gone_version else [int(_s(g)) for g in res[8:]],
    )
