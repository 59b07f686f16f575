"""Count-min sketch with 4-bit saturating counters and periodic halving (TinyLFU's "reset").

Einziger, Friedman & Manes, "TinyLFU: A Highly Efficient Cache Admission Policy" (ACM TOS 2017):
a popularity estimate over a sliding-ish window. Depth 4; each row is a power-of-two number of
counters; the four positions come from one 64-bit mixed hash (double hashing). Counters saturate
at 15 as 4-bit counters do; they are stored one per byte because packing nibbles costs more Python
bytecode than it saves memory. After `sample_size` increments every counter is halved in one C-level
`bytes.translate`, so old popularity fades ("aging"), as in Caffeine's FrequencySketch.
increment and estimate are O(1) (four counters); a reset is O(width) every `sample_size` increments.
"""

from __future__ import annotations

from collections.abc import Hashable

_MAX = 15  # a 4-bit counter
_HALVE = bytes(i >> 1 for i in range(256))
_MIX = 0x9E3779B97F4A7C15  # 2^64 / golden ratio: spreads consecutive integers (hash(n) == n)
_MASK64 = (1 << 64) - 1
DEPTH = 4


class CountMinSketch:
    def __init__(self, capacity: int, counters_per_entry: int = 4, sample_factor: int = 10) -> None:
        width = 16
        while width < capacity * counters_per_entry:
            width <<= 1
        self.width = width
        self._mask = width - 1
        self._table = bytearray(width * DEPTH)
        self.sample_size = max(16, sample_factor * capacity)
        self.additions = 0
        self.resets = 0

    def _slots(self, key: Hashable) -> tuple[int, int, int, int]:
        h = (hash(key) * _MIX) & _MASK64
        mask, w = self._mask, self.width
        a = h & mask
        b = (h >> 32) | 1  # odd step: the four positions differ
        return a, w + ((a + b) & mask), 2 * w + ((a + 2 * b) & mask), 3 * w + ((a + 3 * b) & mask)

    def increment(self, key: Hashable) -> None:
        t = self._table
        i0, i1, i2, i3 = self._slots(key)
        if t[i0] < _MAX:
            t[i0] += 1
        if t[i1] < _MAX:
            t[i1] += 1
        if t[i2] < _MAX:
            t[i2] += 1
        if t[i3] < _MAX:
            t[i3] += 1
        self.additions += 1
        if self.additions >= self.sample_size:
            self.reset()

    def estimate(self, key: Hashable) -> int:
        t = self._table
        i0, i1, i2, i3 = self._slots(key)
        return min(t[i0], t[i1], t[i2], t[i3])

    def reset(self) -> None:
        """Halve every counter (the aging step) and the addition count with them."""
        self._table = bytearray(self._table.translate(_HALVE))
        self.additions //= 2
        self.resets += 1
