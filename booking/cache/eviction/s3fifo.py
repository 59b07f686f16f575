"""S3-FIFO: Yang, Zhang, Qiu, Yue & Rashmi, "FIFO queues are all you need for cache eviction",
SOSP 2023.

Three FIFO queues: a small queue S (10% of the capacity) that every new key enters, a main queue M
(the other 90%), and a ghost queue G remembering as many recently evicted-from-S keys as M holds
(keys only, no values). Each resident key has a 2-bit access counter (0..3), bumped on a hit.
- Evicting from S: the oldest key moves to M if it was hit at least `move_to_main_threshold` times
  while in S (its counter cleared), else it leaves the cache and its key goes to G.
  One-hit wonders (a scan) therefore pass through S quickly and never disturb M ("quick demotion").
- Evicting from M: FIFO with reinsertion (2-bit CLOCK): a key with counter > 0 goes back to the
  head with counter - 1; the first key found at 0 is evicted.
- A miss on a key found in G goes straight to M: it was evicted from S too early.
Eviction comes from M when M is over its share (or S is empty), else from S, one key per call,
as in libCacheSim's S3FIFO.c.

Amortised O(1) per request: every key reinserted in M lost one count, and counts are bounded by 3.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic

from booking.cache.eviction.base import K, V, check_capacity

_MAX_FREQ = 3  # two bits


class S3FIFO(Generic[K, V]):
    name = "s3fifo"

    def __init__(
        self,
        capacity: int,
        small_ratio: float = 0.1,
        move_to_main_threshold: int = 1,
    ) -> None:
        self.capacity = check_capacity(capacity)
        self.small_capacity = max(1, int(capacity * small_ratio))
        self.main_capacity = capacity - self.small_capacity
        self.ghost_capacity = max(1, self.main_capacity)
        self.threshold = move_to_main_threshold
        self._small: OrderedDict[K, None] = OrderedDict()
        self._main: OrderedDict[K, None] = OrderedDict()
        self._ghost: OrderedDict[K, None] = OrderedDict()
        self._values: dict[K, V | None] = {}
        self._freq: dict[K, int] = {}

    def _evict_small(self, out: list[K] | None) -> bool:
        """Drain S until one key leaves the cache; return False if none did (all went to M)."""
        small, main, freq = self._small, self._main, self._freq
        while small:
            key = small.popitem(last=False)[0]
            if freq[key] >= self.threshold:
                main[key] = None
                freq[key] = 0
                continue
            del freq[key]
            del self._values[key]
            ghost = self._ghost
            ghost[key] = None
            if len(ghost) > self.ghost_capacity:
                ghost.popitem(last=False)
            if out is not None:
                out.append(key)
            return True
        return False

    def _evict_main(self, out: list[K] | None) -> None:
        main, freq = self._main, self._freq
        while True:
            key = main.popitem(last=False)[0]
            f = freq[key]
            if f > 0:
                main[key] = None  # reinsert at the head, one count spent
                freq[key] = f - 1
                continue
            del freq[key]
            del self._values[key]
            if out is not None:
                out.append(key)
            return

    def _evict(self, out: list[K] | None) -> None:
        if (len(self._main) > self.main_capacity or not self._small) or not self._evict_small(out):
            self._evict_main(out)

    def _admit(self, key: K, value: V | None, out: list[K] | None) -> None:
        if len(self._values) >= self.capacity:
            self._evict(out)
        ghost = self._ghost
        if key in ghost:
            del ghost[key]
            self._main[key] = None
        else:
            self._small[key] = None
        self._values[key] = value
        self._freq[key] = 0

    def get(self, key: K) -> V | None:
        freq = self._freq
        f = freq.get(key)
        if f is None:
            return None
        if f < _MAX_FREQ:
            freq[key] = f + 1
        return self._values[key]

    def put(self, key: K, value: V) -> list[K]:
        f = self._freq.get(key)
        if f is not None:
            if f < _MAX_FREQ:
                self._freq[key] = f + 1
            self._values[key] = value
            return []
        out: list[K] = []
        self._admit(key, value, out)
        return out

    def access(self, key: K) -> bool:
        freq = self._freq
        f = freq.get(key)
        if f is not None:
            if f < _MAX_FREQ:
                freq[key] = f + 1
            return True
        self._admit(key, None, None)
        return False

    def remove(self, key: K) -> bool:
        if key not in self._values:
            return False
        del self._values[key]
        del self._freq[key]
        if key in self._small:
            del self._small[key]
        else:
            del self._main[key]
        return True

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)
