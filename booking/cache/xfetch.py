"""Strategy `xfetch`: probabilistic early recomputation (Vattani, Chierichetti & Lowenstein,
"Optimal Probabilistic Cache Stampede Prevention", VLDB 2015).

Each value carries delta (how long its recomputation took) and its logical expiry. A reader
recomputes early when  now - delta * beta * ln(U) >= expiry,  U uniform in (0, 1]; i.e. with
probability exp(-(expiry - now) / (delta * beta)), which rises as expiry nears, so under steady
load one reader refreshes shortly before expiry and the key never actually expires. The Redis
TTL is longer than the logical one so the value is there to be read up to and past expiry.
"""

from __future__ import annotations

import math

from booking.cache.base import CachedValue, Loader
from booking.cache.common import RedisStrategy
from booking.cache.envelope import Envelope


def should_recompute(now: float, expiry: float, delta: float, beta: float, u: float) -> bool:
    """The XFetch test; `u` must be in (0, 1] (ln(0) is undefined)."""
    return now - delta * beta * math.log(u) >= expiry


class XFetchCache(RedisStrategy):
    strategy = "xfetch"
    retains_past_expiry = True

    async def get(self, key: str, loader: Loader) -> CachedValue:
        snap = await self._store.read(key)
        now = self._clock()
        env = self._fresh(snap, now)
        if env is None:
            self.metrics.misses.inc()
            return self._serve(await self._load(key, loader), "load")
        self.metrics.hits.inc()  # the value read was fresh, even if we now recompute early
        if self.recompute_early(env, now):
            return self._serve(await self._load(key, loader), "load")
        return self._serve(env, "hit")

    def recompute_early(self, env: Envelope, now: float) -> bool:
        u = 1.0 - self._rng()  # [0, 1) -> (0, 1]
        return should_recompute(now, env.fresh_until, env.delta, self._config.xfetch_beta, u)
