"""The seat-cache contract, the stored envelope, the freshness rules and the metrics: everything a
strategy relies on besides the Redis machinery (booking/cache/strategy.py).

Staleness contract (SEAT_CACHE_STALE_BOUND_SECONDS = B): no strategy ever serves a value whose
database read began more than B seconds ago. That alone bounds how late a hold/sale shows up: a
read at time t returns data read at or after t - B, so any change committed before t - B is in it,
whether or not its invalidation arrived. Invalidation makes changes show up sooner: it records a
watermark, and values read before the watermark are no longer fresh (ttl, singleflight and
xfetch-pure also delete them; lock, xfetch and swr keep them as stale-but-servable copies while one
recomputes, still only up to age B). The freshness TTL is therefore capped at B, and
lock/xfetch/swr have a stale window only when B > TTL; with B == TTL their waiters wait for the
one recomputation.

Metrics: every get() counts exactly one hit or one miss; a miss may then be answered by a load, a
stale value or a wait for another request's load.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import Literal, Protocol

from prometheus_client import Counter, Histogram

from booking.settings import Settings

# The PostgreSQL seat query; returns the JSON-encoded seat map.
Loader = Callable[[], Awaitable[bytes]]
Clock = Callable[[], float]
Random = Callable[[], float]  # uniform in [0, 1), like random.random

# hit:   a fresh cached value.
# stale: a value past its freshness, served while someone else recomputes (lock, swr, xfetch);
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

# Extra physical lifetime in Redis past the last moment a value may be served, so a value is
# never dropped by Redis before the read path decides about it (XFetch: physical > logical TTL).
RETAIN_MARGIN_SECONDS = 1.0


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


# --- what is stored: the seat map plus the timestamps staleness and XFetch need ---------------

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


# --- the parameters and the freshness rules every Redis-backed strategy applies ----------------


@dataclass(frozen=True, slots=True)
class CacheConfig:
    ttl: float  # freshness, seconds
    stale_bound: float  # B above, seconds
    jitter: float = 0.0  # fraction of the TTL randomly cut off, spreads expiries of many keys
    lock_ttl: float = 5.0  # seconds a lock/refresh guard lives if its holder dies
    xfetch_beta: float = 1.0
    invalidate_on_write: bool = True

    def __post_init__(self) -> None:
        if self.ttl <= 0 or self.stale_bound <= 0 or self.lock_ttl <= 0:
            raise ValueError("seat cache TTL, stale bound and lock TTL must be positive")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError("SEAT_CACHE_TTL_JITTER is a fraction of the TTL in [0, 1)")
        if self.xfetch_beta <= 0:
            raise ValueError("SEAT_CACHE_XFETCH_BETA must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> CacheConfig:
        return cls(
            ttl=settings.seat_cache_ttl_seconds,
            stale_bound=settings.seat_cache_stale_bound_seconds,
            jitter=settings.seat_cache_ttl_jitter,
            lock_ttl=settings.seat_cache_lock_ttl_ms / 1000.0,
            xfetch_beta=settings.seat_cache_xfetch_beta,
            invalidate_on_write=settings.seat_cache_invalidate_on_write,
        )

    def fresh_until(self, created_at: float, stored_at: float, u: float) -> float:
        """Logical expiry; `u` in [0, 1) draws the jitter. Never past created_at + B."""
        ttl = self.ttl * (1.0 - self.jitter * u)
        return min(stored_at + ttl, created_at + self.stale_bound)

    def is_fresh(self, env: Envelope, now: float, invalidated_at: float) -> bool:
        # Strictly after the watermark: a load begun before invalidating may predate the write.
        return now < env.fresh_until and env.created_at > invalidated_at

    def is_servable(self, env: Envelope, now: float) -> bool:
        return env.age(now) <= self.stale_bound

    def retain_seconds(self) -> float:
        """Longest any value (or invalidation watermark) needs to stay in Redis."""
        return max(self.ttl, self.stale_bound) + RETAIN_MARGIN_SECONDS


# --- Prometheus metrics, labelled by strategy -------------------------------------------------

HITS = Counter(
    "seat_cache_hits_total", "Seat-map reads answered by a fresh cached value", ["strategy"]
)
MISSES = Counter(
    "seat_cache_misses_total", "Seat-map reads that found no fresh value", ["strategy"]
)
LOADS = Counter(
    "seat_cache_loads_total", "Seat-map database recomputations (loader calls)", ["strategy"]
)
LOCK_WAITS = Counter(
    "seat_cache_lock_waits_total",
    "Reads that waited for another request's load (lock holder or in-flight load)",
    ["strategy"],
)
STALE_SERVED = Counter(
    "seat_cache_stale_served_total", "Reads answered by a stale value", ["strategy"]
)
EVICTIONS = Counter(
    "seat_cache_evictions_total", "Entries evicted from the in-process tier", ["strategy"]
)
LOAD_SECONDS = Histogram(
    "seat_cache_load_seconds",
    "Duration of seat-map database recomputations",
    ["strategy"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0),
)
STALE_AGE_SECONDS = Histogram(
    "seat_cache_stale_age_seconds",
    "Age (since its database read began) of each stale value served",
    ["strategy"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 20.0),
)


@dataclass(frozen=True, slots=True)
class StrategyMetrics:
    """The children for one strategy label, bound once (labels() is a dict lookup per call)."""

    hits: Counter
    misses: Counter
    loads: Counter
    lock_waits: Counter
    stale_served: Counter
    evictions: Counter
    load_seconds: Histogram
    stale_age_seconds: Histogram


@cache
def for_strategy(strategy: str) -> StrategyMetrics:
    return StrategyMetrics(
        hits=HITS.labels(strategy),
        misses=MISSES.labels(strategy),
        loads=LOADS.labels(strategy),
        lock_waits=LOCK_WAITS.labels(strategy),
        stale_served=STALE_SERVED.labels(strategy),
        evictions=EVICTIONS.labels(strategy),
        load_seconds=LOAD_SECONDS.labels(strategy),
        stale_age_seconds=STALE_AGE_SECONDS.labels(strategy),
    )
