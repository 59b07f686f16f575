"""The seat-cache contract every strategy answers, and the value it hands back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

# The PostgreSQL seat query; returns the JSON-encoded seat map.
Loader = Callable[[], Awaitable[bytes]]

# hit:   a fresh cached value.
# stale: a value past its freshness, served while someone else recomputes (lock, swr);
#        never older than the staleness bound.
# load:  this request ran the loader itself (a database recomputation).
# miss:  the cache missed, and this request got the value another request loaded
#        (joined an in-flight load or waited for the lock holder).
Source = Literal["hit", "miss", "stale", "load"]

STRATEGIES: tuple[str, ...] = (
    "none",
    "ttl",
    "lock",
    "singleflight",
    "xfetch",
    "xfetch-pure",
    "swr",
)


@dataclass(frozen=True, slots=True)
class CachedValue:
    value: bytes
    stale: bool
    age_seconds: float  # now - created_at
    source: Source
    created_at: float = 0.0  # wall-clock time the database read began
    fresh_until: float = 0.0  # wall-clock logical expiry (0 for values that were never cached)


class SeatCache(Protocol):
    strategy: str

    async def get(self, key: str, loader: Loader) -> CachedValue: ...

    async def invalidate(self, key: str) -> None:
        """Call after a hold/sale/cancel/expiry changed the seats behind `key`."""
        ...

    async def aclose(self) -> None:
        """Cancel background refreshes and in-flight shared loads."""
        ...


def seat_map_key(event_id: int | str) -> str:
    """Redis key of an event's seat map; the {hash tag} keeps its helper keys on one slot."""
    return f"seatmap:{{{event_id}}}"
