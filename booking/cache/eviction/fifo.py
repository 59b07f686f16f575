"""FIFO: evict the entry inserted longest ago; hits change nothing.

One `OrderedDict` in insertion order; an eviction is `popitem(last=False)` (a plain dict would
degrade: popping its first item repeatedly leaves dummies that `next(iter())` must skip).
Every operation is O(1).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic

from booking.cache.eviction.base import K, V, check_capacity

_MISSING = object()


class FIFO(Generic[K, V]):
    name = "fifo"

    def __init__(self, capacity: int) -> None:
        self.capacity = check_capacity(capacity)
        self._data: OrderedDict[K, V | None] = OrderedDict()

    def get(self, key: K) -> V | None:
        return self._data.get(key)

    def put(self, key: K, value: V) -> list[K]:
        data = self._data
        if key in data:
            data[key] = value  # keeps its place in the queue
            return []
        evicted: list[K] = []
        if len(data) >= self.capacity:
            evicted.append(data.popitem(last=False)[0])
        data[key] = value
        return evicted

    def access(self, key: K) -> bool:
        data = self._data
        if key in data:
            return True
        if len(data) >= self.capacity:
            data.popitem(last=False)
        data[key] = None
        return False

    def remove(self, key: K) -> bool:
        return self._data.pop(key, _MISSING) is not _MISSING

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)
