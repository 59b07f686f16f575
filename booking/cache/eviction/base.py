"""The interface every eviction policy answers (the bounded in-process cache tier and the simulator).

Keys are hashable; values are opaque. A policy holds at most `capacity` entries.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class EvictionPolicy(Protocol, Generic[K, V]):
    name: str
    capacity: int

    def get(self, key: K) -> V | None:
        """Return the value and record the access (a hit), or None (a miss, nothing recorded)."""
        ...

    def put(self, key: K, value: V) -> list[K]:
        """Insert or update `key`; return the keys evicted to make room (empty if none)."""
        ...

    def remove(self, key: K) -> bool:
        """Drop `key` if present (invalidation); return whether it was there."""
        ...

    def __contains__(self, key: object) -> bool: ...

    def __len__(self) -> int: ...
