"""What the cache stores: the seat map plus the timestamps staleness and XFetch need."""

from __future__ import annotations

import struct
from dataclasses import dataclass

_MAGIC = b"SCE1"
# magic, created_at, delta, fresh_until; network byte order, fixed size so decode is one unpack.
_HEADER = struct.Struct("!4sddd")


@dataclass(frozen=True, slots=True)
class Envelope:
    value: bytes
    created_at: float  # wall clock when the loader started: the data is at least this recent
    delta: float  # seconds the load took (XFetch's delta)
    fresh_until: float  # wall-clock logical expiry

    def age(self, now: float) -> float:
        return max(0.0, now - self.created_at)


def encode(env: Envelope) -> bytes:
    return _HEADER.pack(_MAGIC, env.created_at, env.delta, env.fresh_until) + env.value


def decode(blob: bytes) -> Envelope | None:
    """None for anything that is not an envelope (e.g. a value written by an older version)."""
    if len(blob) < _HEADER.size:
        return None
    magic, created_at, delta, fresh_until = _HEADER.unpack_from(blob)
    if magic != _MAGIC:
        return None
    return Envelope(blob[_HEADER.size :], created_at, delta, fresh_until)
