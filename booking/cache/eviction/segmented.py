"""The request path shared by policies built from several resident segments (ARC, W-TinyLFU).

A subclass supplies `_hit` (record a hit, return the segment now holding the key, or None) and
`_admit` (insert a missed key, return the key evicted to make room, if any); get, put and the
simulator's `access` follow from them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic

from booking.cache.eviction.base import K, V


class SegmentedPolicy(Generic[K, V]):
    def _hit(self, key: K) -> OrderedDict[K, V | None] | None:
        raise NotImplementedError

    def _admit(self, key: K, value: V | None) -> K | None:
        raise NotImplementedError

    def get(self, key: K) -> V | None:
        segment = self._hit(key)
        return None if segment is None else segment[key]

    def put(self, key: K, value: V) -> list[K]:
        segment = self._hit(key)
        if segment is not None:
            segment[key] = value
            return []
        evicted = self._admit(key, value)
        return [] if evicted is None else [evicted]

    def access(self, key: K) -> bool:
        if self._hit(key) is not None:
            return True
        self._admit(key, None)
        return False
