"""ARC: Megiddo & Modha, "ARC: A Self-Tuning, Low Overhead Replacement Cache", FAST 2003.

Two resident LRU lists, T1 (seen once recently) and T2 (seen at least twice), and two ghost lists of
evicted keys, B1 and B2, each bounded so that |T1| + |B1| <= c and the four lists hold <= 2c keys.
A ghost hit in B1 means "recency deserved more room": the target size p of T1 grows; a ghost hit in
B2 shrinks it. REPLACE evicts from T1 when it is above its target p, else from T2, so ARC
continuously trades recency against frequency with no parameter to tune.
The code follows the paper's Figure 4 case by case. One deviation: after an explicit `remove` the
cache may be below capacity while the ghosts are non-empty; REPLACE then is skipped (nothing needs
to leave). O(1) per request.
"""

from __future__ import annotations

from collections import OrderedDict

from eviction.base import K, Policy, V


class ARC(Policy[K, V]):
    name = "arc"

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.p = 0.0  # target size of T1
        self._t1: OrderedDict[K, None] = OrderedDict()
        self._t2: OrderedDict[K, None] = OrderedDict()
        self._b1: OrderedDict[K, None] = OrderedDict()
        self._b2: OrderedDict[K, None] = OrderedDict()

    def _hit(self, key: K) -> None:
        t2 = self._t2
        if key in t2:
            t2.move_to_end(key)
        else:
            del self._t1[key]
            t2[key] = None

    def _replace(self, in_b2: bool) -> K:
        t1 = self._t1
        # `not t2` guards the corner the paper leaves open: p == c == |T1| with T2 empty.
        if t1 and (not self._t2 or len(t1) > self.p or (in_b2 and len(t1) == self.p)):
            victim = t1.popitem(last=False)[0]
            self._b1[victim] = None
        else:
            victim = self._t2.popitem(last=False)[0]
            self._b2[victim] = None
        return victim

    def _admit(self, key: K) -> K | None:
        c = self.capacity
        t1, t2, b1, b2 = self._t1, self._t2, self._b1, self._b2
        full = len(t1) + len(t2) >= c
        victim: K | None = None
        if key in b1:  # case II
            self.p = min(float(c), self.p + max(len(b2) / len(b1), 1.0))
            if full:
                victim = self._replace(False)
            del b1[key]
            t2[key] = None
            return victim
        if key in b2:  # case III
            self.p = max(0.0, self.p - max(len(b1) / len(b2), 1.0))
            if full:
                victim = self._replace(True)
            del b2[key]
            t2[key] = None
            return victim
        # case IV: a brand-new key
        l1 = len(t1) + len(b1)
        if l1 >= c:  # IV.A
            if len(t1) < c:
                b1.popitem(last=False)
                if full:
                    victim = self._replace(False)
            else:
                victim = t1.popitem(last=False)[0]
        elif l1 + len(t2) + len(b2) >= c:  # IV.B
            if l1 + len(t2) + len(b2) >= 2 * c:
                b2.popitem(last=False)
            if full:
                victim = self._replace(False)
        t1[key] = None
        return victim

    def _forget(self, key: K) -> None:
        if key in self._t1:
            del self._t1[key]
        else:
            del self._t2[key]
