"""The interface every eviction policy answers (the bounded in-process cache tier, the simulator).

Keys are hashable; values are opaque. A policy holds at most `capacity` entries.

Semantics shared by every policy, so that the cache tier and the simulator agree:
- `get` on a resident key is a hit and is recorded; a miss records nothing (ghost lists and
  frequency sketches learn about a key when it is `put`).
- `put` on a resident key updates the value, counts as an access and never evicts.
- `access(key)` is exactly `get(key)` followed, on a miss, by `put(key, None)`; it is the
  simulator's fast path and allocates no eviction list.
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

    def access(self, key: K) -> bool:
        """One simulated request: True on a hit; on a miss admit `key` (value None): False."""
        ...

    def __contains__(self, key: object) -> bool: ...

    def __len__(self) -> int: ...


def check_capacity(capacity: int) -> int:
    """Reject capacities a policy cannot honour (every policy needs room for one entry)."""
    if capacity < 1:
        raise ValueError(f"capacity must be >= 1, got {capacity}")
    return capacity
