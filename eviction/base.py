"""The interface every eviction policy answers (the bounded in-process cache tier, the simulator),
and `Policy`, the base most policies are built on.

Keys are hashable; values are opaque. A policy holds at most `capacity` entries.

Semantics shared by every policy, so that the cache tier and the simulator agree:
- `get` on a resident key is a hit and is recorded; a miss records nothing (ghost lists and
  frequency sketches learn about a key when it is `put`).
- `put` on a resident key updates the value, counts as an access and never evicts.
- `access(key)` is exactly `get(key)` followed, on a miss, by `put(key, None)`; it is the
  simulator's fast path and allocates no eviction list.

`Policy` works like cachetools' `Cache`: it owns the storage (one dict key -> value) and the
request path, and a policy is a subclass with three hooks over its own bookkeeping (order lists,
counters, ghosts): `_hit` (a resident key was requested), `_admit` (place a new key, return the
key that must leave, if any) and `_forget` (a resident key was removed).
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


class Policy(Generic[K, V]):
    """Storage and the request path; subclasses decide only what is recorded and who leaves."""

    name: str = ""

    def __init__(self, capacity: int) -> None:
        self.capacity = check_capacity(capacity)
        self._data: dict[K, V | None] = {}

    def _hit(self, key: K) -> None:
        """Record a request for resident `key`."""

    def _admit(self, key: K) -> K | None:
        """Place new `key` in the bookkeeping (the cache may be full); return the key to drop."""
        raise NotImplementedError

    def _forget(self, key: K) -> None:
        """Drop resident `key` from the bookkeeping (an explicit remove, not an eviction)."""
        raise NotImplementedError

    def get(self, key: K) -> V | None:
        data = self._data
        if key in data:
            self._hit(key)
            return data[key]
        return None

    def put(self, key: K, value: V) -> list[K]:
        data = self._data
        if key in data:
            self._hit(key)
            data[key] = value
            return []
        victim = self._admit(key)
        data[key] = value
        if victim is None:
            return []
        del data[victim]
        return [victim]

    def access(self, key: K) -> bool:
        data = self._data
        if key in data:
            self._hit(key)
            return True
        victim = self._admit(key)
        data[key] = None
        if victim is not None:
            del data[victim]
        return False

    def remove(self, key: K) -> bool:
        if key not in self._data:
            return False
        del self._data[key]
        self._forget(key)
        return True

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)
