"""Queue operations (join, poll, remove): one Lua round trip each, parsed into plain values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from waitingroom.keys import RoomKeys
from waitingroom.revocations import REVOCATION_CHANNEL
from waitingroom.scripts import Scripts

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


@dataclass(frozen=True)
class PollRaw:
    user_id: str
    status: RawStatus
    position: int | None
    rate: str
    pre_count: int
    expires_at_ms: int


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


async def join(
    scripts: Scripts,
    keys: RoomKeys,
    *,
    user_id: str,
    new_ticket: str,
    now_ms: int,
    opens_at_ms: int,
    seed: int,
    admit_per_second: int,
) -> JoinRaw:
    res = await scripts.run(
        scripts.join,
        keys=[
            keys.seq,
            keys.queue,
            keys.pre,
            keys.opened,
            keys.active,
            keys.users,
            keys.tickets,
            keys.joined,
            keys.rate,
        ],
        args=[user_id, new_ticket, now_ms, opens_at_ms, seed, admit_per_second],
    )
    return JoinRaw(
        ticket=_s(res[0]),
        status=_status(res[1]),
        position=_position(res[2]),
        rate=_s(res[3]),
        pre_count=int(res[4]),
        created=bool(int(res[5])),
    )


async def poll(
    scripts: Scripts,
    keys: RoomKeys,
    *,
    ticket: str,
    now_ms: int,
    opens_at_ms: int,
    seed: int,
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
        ],
        args=[ticket, now_ms, opens_at_ms, seed, admit_per_second, poll_limit],
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
    )


async def remove(scripts: Scripts, keys: RoomKeys, user_id: str) -> tuple[bool, bool]:
    """Drop the user from every structure; returns (was_active, was_waiting)."""
    res = await scripts.run(
        scripts.remove,
        keys=[keys.users, keys.tickets, keys.queue, keys.pre, keys.active, keys.joined],
        args=[user_id, keys.prefix + REVOCATION_CHANNEL, keys.event_id],
    )
    return bool(int(res[0])), bool(int(res[1]))
