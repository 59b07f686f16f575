"""Trace loading and the simulation loop of the eviction simulator.

Keys are interned to small ints once per trace, so the per-request work is one bound-method call
with an int argument and no allocation on the Python side of the loop (`sum(map(...))`).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from eviction import make_policy


@dataclass(frozen=True)
class Trace:
    name: str
    requests: list[int]
    distinct: int


def intern_keys(keys: list[str]) -> tuple[list[int], int]:
    """Map keys to dense int ids in order of first appearance; return ids and the distinct count."""
    ids: dict[str, int] = {}
    setdefault = ids.setdefault
    interned = [setdefault(k, len(ids)) for k in keys]
    return interned, len(ids)


def load_trace(path: Path, name: str | None = None) -> Trace:
    """Read one key per line (blank lines skipped; surrounding whitespace is not part of a key)."""
    keys = [line.strip() for line in path.read_text().splitlines()]
    requests, distinct = intern_keys([k for k in keys if k])
    return Trace(name or path.stem, requests, distinct)


@dataclass(frozen=True)
class Result:
    policy: str
    capacity: int
    requests: int
    hits: int
    seconds: float

    @property
    def hit_ratio(self) -> float:
        return self.hits / self.requests if self.requests else 0.0

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> dict[str, object]:
        """The CLI's JSON line, in DESIGN.md's key order."""
        return {
            "policy": self.policy,
            "capacity": self.capacity,
            "requests": self.requests,
            "hits": self.hits,
            "hit_ratio": round(self.hit_ratio, 6),
        }


def simulate(policy: str, capacity: int, requests: list[int]) -> Result:
    """Replay `requests` through a fresh `policy` of `capacity` keys; time only the replay."""
    cache = make_policy(policy, capacity, trace=requests if policy == "opt" else None)
    started = time.perf_counter()
    hits = sum(map(cache.access, requests))
    elapsed = time.perf_counter() - started
    return Result(policy, capacity, len(requests), hits, elapsed)


def static_top_hit_ratio(requests: list[int], capacity: int) -> float:
    """Hits of a cache pre-loaded with the `capacity` keys most requested over the whole trace and
    never changed: on independent (IRM) requests, the ceiling of any policy that only learns
    popularity, however perfectly. Offline like OPT, and not a bound when popularity moves."""
    counts = sorted(Counter(requests).values(), reverse=True)
    return sum(counts[:capacity]) / len(requests) if requests else 0.0


@dataclass(frozen=True)
class Row:
    """One sweep cell: a policy's result beside OPT's and the static top-C bound."""

    workload: str
    distinct: int
    result: Result
    opt_hit_ratio: float
    top_c_hit_ratio: float

    @property
    def gap_pp(self) -> float:
        """Percentage points of hit ratio below OPT at the same capacity."""
        return 100.0 * (self.opt_hit_ratio - self.result.hit_ratio)
