"""Prometheus metrics of the seat cache, labelled by strategy.

Every get() counts exactly one hit or one miss; a miss may then be answered by a load, a
stale value or a wait for another request's load.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from prometheus_client import Counter, Histogram

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
