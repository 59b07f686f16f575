"""Name -> policy factory, so the cache tier and the simulator pick policies by name."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from eviction.arc import ARC
from eviction.base import EvictionPolicy
from eviction.fifo import FIFO
from eviction.lfu import LFU
from eviction.lru import LRU
from eviction.opt import OPT
from eviction.s3fifo import S3FIFO
from eviction.wtinylfu import WTinyLFU

Factory = Callable[[int, Sequence[Hashable] | None], EvictionPolicy[Any, Any]]


def _opt(capacity: int, trace: Sequence[Hashable] | None) -> EvictionPolicy[Any, Any]:
    if trace is None:
        raise ValueError("opt is offline: it needs the whole trace (make_policy(..., trace=...))")
    return OPT(capacity, trace)


POLICIES: dict[str, Factory] = {
    "lru": lambda c, _t: LRU(c),
    "fifo": lambda c, _t: FIFO(c),
    "lfu": lambda c, _t: LFU(c),
    "arc": lambda c, _t: ARC(c),
    "s3fifo": lambda c, _t: S3FIFO(c),
    "wtinylfu": lambda c, _t: WTinyLFU(c),
    "opt": _opt,
}

ONLINE = tuple(name for name in POLICIES if name != "opt")


def make_policy(
    name: str, capacity: int, trace: Sequence[Hashable] | None = None
) -> EvictionPolicy[Any, Any]:
    """Build policy `name` holding at most `capacity` keys; `trace` is required by (only) opt."""
    try:
        factory = POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}") from None
    return factory(capacity, trace)
