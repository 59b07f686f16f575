"""LFU in O(1): Shah, Mitra & Matani, "An O(1) algorithm for implementing the LFU cache eviction
scheme" (2010).

Entries are grouped in frequency buckets; the paper links the buckets in a list, here a dict
`frequency -> bucket` plus the minimum frequency plays that role (a key only ever moves from
bucket f to f + 1, and a new key starts at 1, so the minimum is maintained in O(1)).
Each bucket is an `OrderedDict` in recency order, so ties at the lowest frequency are broken by
recency: the least recently used key of the least frequently used bucket is evicted.

Frequencies count accesses while resident ("in-cache LFU"): an evicted key starts again at 1, and
counts never age, which is why LFU clings to yesterday's hot keys when popularity shifts.
get, put, access and eviction are O(1); remove is O(1) unless it empties the lowest bucket
(then O(distinct frequencies), to find the new minimum).
"""

from __future__ import annotations

from collections import OrderedDict

from eviction.base import K, Policy, V


class LFU(Policy[K, V]):
    name = "lfu"

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self._freq: dict[K, int] = {}
        self._buckets: dict[int, OrderedDict[K, None]] = {}
        self._min = 0

    def _hit(self, key: K) -> None:
        freq = self._freq
        buckets = self._buckets
        f = freq[key]
        bucket = buckets[f]
        del bucket[key]
        if not bucket:
            del buckets[f]
            if self._min == f:
                self._min = f + 1
        f += 1
        freq[key] = f
        nxt = buckets.get(f)
        if nxt is None:
            nxt = buckets[f] = OrderedDict()
        nxt[key] = None

    def _admit(self, key: K) -> K | None:
        victim: K | None = None
        if len(self._freq) >= self.capacity:
            bucket = self._buckets[self._min]
            victim = bucket.popitem(last=False)[0]
            if not bucket:
                del self._buckets[self._min]
            del self._freq[victim]
        self._freq[key] = 1
        self._min = 1
        ones = self._buckets.get(1)
        if ones is None:
            ones = self._buckets[1] = OrderedDict()
        ones[key] = None
        return victim

    def _forget(self, key: K) -> None:
        f = self._freq.pop(key)
        bucket = self._buckets[f]
        del bucket[key]
        if not bucket:
            del self._buckets[f]
            if self._min == f:
                # Rare path (invalidation): rescan; eviction itself never needs this.
                self._min = min(self._buckets, default=0)
