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

from eviction.base import K, Policy, V

_MAX_FREQ = 3  # two bits


class S3FIFO(Policy[K, V]):
    name = "s3fifo"

    def __init__(
        self,
        capacity: int,
        small_ratio: float = 0.1,
        move_to_main_threshold: int = 1,
    ) -> None:
        super().__init__(capacity)
        self.small_capacity = max(1, int(capacity * small_ratio))
        self.main_capacity = capacity - self.small_capacity
        self.ghost_capacity = max(1, self.main_capacity)
        self.threshold = move_to_main_threshold
        self._small: OrderedDict[K, None] = OrderedDict()
        self._main: OrderedDict[K, None] = OrderedDict()
        self._ghost: OrderedDict[K, None] = OrderedDict()
        self._freq: dict[K, int] = {}

    def _evict_small(self) -> K | None:
        """Drain S until one key leaves the cache; None if none did (all went to M)."""
        small, main, freq = self._small, self._main, self._freq
        while small:
            key = small.popitem(last=False)[0]
            if freq[key] >= self.threshold:
                main[key] = None
                freq[key] = 0
                continue
            del freq[key]
            ghost = self._ghost
            ghost[key] = None
            if len(ghost) > self.ghost_capacity:
                ghost.popitem(last=False)
            return key
        return None

    def _evict_main(self) -> K:
        main, freq = self._main, self._freq
        while True:
            key = main.popitem(last=False)[0]
            f = freq[key]
            if f > 0:
                main[key] = None  # reinsert at the head, one count spent
                freq[key] = f - 1
                continue
            del freq[key]
            return key

    def _evict(self) -> K:
        victim = None
        if len(self._main) <= self.main_capacity and self._small:
            victim = self._evict_small()
        return self._evict_main() if victim is None else victim

    def _hit(self, key: K) -> None:
        f = self._freq[key]
        if f < _MAX_FREQ:
            self._freq[key] = f + 1

    def _admit(self, key: K) -> K | None:
        victim = self._evict() if len(self._freq) >= self.capacity else None
        ghost = self._ghost
        if key in ghost:
            del ghost[key]
            self._main[key] = None
        else:
            self._small[key] = None
        self._freq[key] = 0
        return victim

    def _forget(self, key: K) -> None:
        del self._freq[key]
        if key in self._small:
            del self._small[key]
        else:
            del self._main[key]
