"""W-TinyLFU as in Caffeine: Einziger, Friedman & Manes, "TinyLFU: A Highly Efficient Cache
Admission Policy" (ACM TOS 2017), and Caffeine's BoundedLocalCache.

- A window LRU (1% of the capacity) takes every new key, so a burst of new keys can still hit.
- The main area (99%) is a segmented LRU: probation (20%) and protected (80%). A hit in probation
  promotes to protected; protected's overflow is demoted to probation's most recent end.
- When the window overflows, its least recent key (the candidate) competes with the least recent
  key of probation (the victim): the candidate is admitted only if the count-min sketch estimates
  it strictly more frequent; the loser leaves the cache. Scans lose (count 1 against a hot key),
  and the sketch's periodic halving lets new favourites overtake old ones.
- The sketch (4-bit counters, halved every 10 x capacity accesses) counts every request once:
  a hit, or the `put` after a miss. No doorkeeper, no adaptive window (Caffeine's hill climber),
  no random admission of warm candidates (Caffeine's hash-flooding guard): fixed, deterministic.

O(1) per request: a few dict operations and four sketch counters.
"""

from __future__ import annotations

from collections import OrderedDict

from eviction.base import K, Policy, V
from eviction.sketch import CountMinSketch


class WTinyLFU(Policy[K, V]):
    name = "wtinylfu"

    def __init__(
        self, capacity: int, window_ratio: float = 0.01, protected_ratio: float = 0.8
    ) -> None:
        super().__init__(capacity)
        self.window_capacity = max(1, int(capacity * window_ratio))
        self.main_capacity = capacity - self.window_capacity
        # At least 1, so a promoted key is never demoted straight back.
        self.protected_capacity = max(1, int(self.main_capacity * protected_ratio))
        self.sketch = CountMinSketch(capacity)
        self._window: OrderedDict[K, None] = OrderedDict()
        self._probation: OrderedDict[K, None] = OrderedDict()
        self._protected: OrderedDict[K, None] = OrderedDict()

    def _hit(self, key: K) -> None:
        protected = self._protected
        if key in protected:
            protected.move_to_end(key)
        elif key in self._probation:
            del self._probation[key]
            protected[key] = None
            if len(protected) > self.protected_capacity:
                self._probation[protected.popitem(last=False)[0]] = None
        else:
            self._window.move_to_end(key)
        self.sketch.increment(key)

    def _admit(self, key: K) -> K | None:
        """Insert a new key in the window; return the key that left the cache, if any."""
        self.sketch.increment(key)
        window = self._window
        window[key] = None
        if len(window) <= self.window_capacity:
            return None
        candidate = window.popitem(last=False)[0]
        probation, protected = self._probation, self._protected
        if len(probation) + len(protected) < self.main_capacity:
            probation[candidate] = None
            return None
        if self.main_capacity == 0:
            return candidate
        segment = probation if probation else protected
        victim = next(iter(segment))
        if self.sketch.estimate(candidate) > self.sketch.estimate(victim):
            del segment[victim]
            probation[candidate] = None
            return victim
        return candidate

    def _forget(self, key: K) -> None:
        for segment in (self._window, self._probation, self._protected):
            if key in segment:
                del segment[key]
                return
