"""OPT: Belady's MIN, "A study of replacement algorithms for a virtual-storage computer",
IBM Systems Journal 5(2), 1966. The offline optimum for demand paging: on a miss with a full
cache, evict the resident key whose next use lies farthest in the future (never used again = the
farthest). No online policy that admits every missed key can score more hits on the same trace.

It must see the whole trace up front. `next_use[i]` (the index of the next request for trace[i])
is precomputed in one backward pass; a key never requested again gets n + i, so next-use values are
all distinct and a max-heap of plain ints (negated) needs no tuples: the key of a heap entry u is
trace[u] (or trace[u - n]). A hit pushes the key's new next use and leaves the old entry to be
discarded lazily when it surfaces (it no longer matches `_next[key]`); the heap is rebuilt when
stale entries outnumber live ones 4 to 1. O(n) preprocessing, O(log C) amortised per request.

Requests must arrive in trace order: `access(key)`, or `get(key)` and, after a miss, `put(key, v)`.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Generic

from eviction.base import K, V, check_capacity


def next_uses(trace: Sequence[K]) -> list[int]:
    """next_use[i] = index of the next request for trace[i], or n + i if there is none."""
    n = len(trace)
    out = [0] * n
    seen: dict[K, int] = {}
    for i in range(n - 1, -1, -1):
        key = trace[i]
        out[i] = seen.get(key, n + i)
        seen[key] = i
    return out


class OPT(Generic[K, V]):
    name = "opt"

    def __init__(self, capacity: int, trace: Sequence[K]) -> None:
        self.capacity = check_capacity(capacity)
        self._trace = trace
        self._n = len(trace)
        self._next_use = next_uses(trace)
        self._pos = 0
        self._next: dict[K, int] = {}  # resident key -> its next use
        self._values: dict[K, V | None] = {}
        self._heap: list[int] = []  # negated next uses, some stale
        self._pending: K | None = None  # the key whose get() just missed, awaiting put()
        self._pending_next = 0

    def _advance(self, key: K) -> int:
        pos = self._pos
        if pos >= self._n or self._trace[pos] != key:
            raise ValueError(f"OPT is offline: request {pos} is not {key!r} in its trace")
        self._pos = pos + 1
        return self._next_use[pos]

    def _owner(self, use: int) -> K:
        return self._trace[use] if use < self._n else self._trace[use - self._n]

    def _evict(self) -> K:
        heap, nxt = self._heap, self._next
        while True:
            use = -heapq.heappop(heap)
            key = self._owner(use)
            if nxt.get(key) == use:
                del nxt[key]
                del self._values[key]
                return key

    def _record(self, key: K, use: int) -> None:
        self._next[key] = use
        heap = self._heap
        heapq.heappush(heap, -use)
        if len(heap) > 4 * len(self._next) + 64:
            self._heap = [-u for u in self._next.values()]
            heapq.heapify(self._heap)

    def _admit(self, key: K, value: V | None, use: int) -> K | None:
        victim = self._evict() if len(self._next) >= self.capacity else None
        self._values[key] = value
        self._record(key, use)
        return victim

    def access(self, key: K) -> bool:
        use = self._advance(key)
        if key in self._next:
            self._record(key, use)
            return True
        self._admit(key, None, use)
        return False

    def get(self, key: K) -> V | None:
        use = self._advance(key)
        if key in self._next:
            self._record(key, use)
            return self._values[key]
        self._pending, self._pending_next = key, use
        return None

    def put(self, key: K, value: V) -> list[K]:
        if key in self._next:
            self._values[key] = value  # an update, not a request: the cursor stays
            return []
        if self._pending != key:
            raise ValueError("OPT is offline: put() must follow the get() that missed")
        self._pending = None
        victim = self._admit(key, value, self._pending_next)
        return [] if victim is None else [victim]

    def remove(self, key: K) -> bool:
        if key not in self._next:
            return False
        del self._next[key]  # its heap entries become stale
        del self._values[key]
        return True

    def __contains__(self, key: object) -> bool:
        return key in self._next

    def __len__(self) -> int:
        return len(self._next)
