"""Strategy `ttl`: plain cache-aside. A miss loads and SETs with PX (optionally jittered).

Under concurrency every request that misses loads: the stampede the other strategies prevent.
The read path is RedisStrategy's own (booking/cache/strategy.py).
"""

from __future__ import annotations

from booking.cache.strategy import RedisStrategy


class TTLCache(RedisStrategy):
    strategy = "ttl"
