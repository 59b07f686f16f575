"""LRU: evict the least recently used entry.

FIFO's queue, except that a hit moves the key to the young end (`move_to_end`), so the queue is
in recency order and its oldest key is the least recently used. Every operation is O(1).
"""

from __future__ import annotations

from eviction.base import K, V
from eviction.fifo import FIFO


class LRU(FIFO[K, V]):
    name = "lru"

    def _hit(self, key: K) -> None:
        self._queue.move_to_end(key)
