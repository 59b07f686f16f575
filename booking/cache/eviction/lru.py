"""LRU: evict the least recently used entry.

One `OrderedDict` in recency order (oldest first): a hit is `move_to_end`, an eviction is
`popitem(last=False)`. Every operation is O(1).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic

from booking.cache.eviction.base import K, V, check_capacity

_MISSING = object()


class LRU(Generic[K, V]):
    name = "lru"

    def __init__(self, capacity: int) -> None:
        self.capacity = check_capacity(capacity)
        self._data: OrderedDict[K, V | None] = OrderedDict()

    def get(self, key: K) -> V | None:
        data = self._data
        if key in data:
            data.move_to_end(key)
            return data[key]
        return None

    def put(self, key: K, value: V) -> list[K]:
        data = self._data
        if key in data:
            data.move_to_end(key)
            data[key] = value
            return []
        evicted: list[K] = []
        if len(data) >= self.capacity:
            evicted.append(data.popitem(last=False)[0])
        data[key] = value
        return evicted

    def access(self, key: K) -> bool:
        data = self._data
        if key in data:
            data.move_to_end(key)
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
