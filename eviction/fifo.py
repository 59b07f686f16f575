"""FIFO: evict the entry inserted longest ago; hits change nothing.

One `OrderedDict` of the keys in insertion order; an eviction is `popitem(last=False)` (a plain
dict would degrade: popping its first item repeatedly leaves dummies that `next(iter())` must
skip). Every operation is O(1).
"""

from __future__ import annotations

from collections import OrderedDict

from eviction.base import K, Policy, V


class FIFO(Policy[K, V]):
    name = "fifo"

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self._queue: OrderedDict[K, None] = OrderedDict()

    def _admit(self, key: K) -> K | None:
        queue = self._queue
        victim = queue.popitem(last=False)[0] if len(queue) >= self.capacity else None
        queue[key] = None
        return victim

    def _forget(self, key: K) -> None:
        del self._queue[key]
