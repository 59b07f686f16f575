"""Strategy `xfetch`: probabilistic early recomputation (Vattani, Chierichetti & Lowenstein,
"Optimal Probabilistic Cache Stampede Prevention", VLDB 2015), with a recompute guard.

Each value carries delta (how long its recomputation took) and its logical expiry. A reader
recomputes early when  now - delta * beta * ln(U) >= expiry,  U uniform in (0, 1]; i.e. with
probability exp(-(expiry - now) / (delta * beta)), which rises as expiry nears, so under steady
load one reader refreshes shortly before expiry and the key never actually expires. The Redis
TTL is longer than the logical one so the value is there to be read up to and past expiry.

The formula decides *when*; it cannot stop two readers that draw "recompute" within the same
delta from both loading, the reader that draws it pays the recomputation in its own latency, and
it offers nothing on a cold or invalidated key. So `xfetch` here adds, around the formula:
- a guard (the `lock` strategy's Redis mutex) that decides *who*: one recomputation per key
  across processes;
- the recomputation runs in the background (RedisStrategy._start_refresh): the reader that drew it
  is answered with the still-fresh value, so nobody waits at expiry;
- a key that is not fresh (cold, invalidated by a booking, or expired) is handled like `lock`:
  one recomputes, the others take the stale copy within the stale bound or wait.
`xfetch-pure` is the paper's algorithm alone (synchronous, unguarded, invalidation deletes),
kept so the experiment shows what these additions buy.
"""

from __future__ import annotations

import math

from booking.cache.base import CachedValue, Envelope, Loader, Random
from booking.cache.strategy import RedisStrategy


def should_recompute(now: float, expiry: float, delta: float, beta: float, u: float) -> bool:
    """The XFetch test; `u` must be in (0, 1] (ln(0) is undefined)."""
    return now - delta * beta * math.log(u) >= expiry


def xfetch_draw(env: Envelope, now: float, beta: float, rng: Random) -> bool:
    u = 1.0 - rng()  # [0, 1) -> (0, 1]
    return should_recompute(now, env.fresh_until, env.delta, beta, u)


class XFetchCache(RedisStrategy):
    strategy = "xfetch"
    serves_stale = True
    retains_past_expiry = True

    async def get(self, key: str, loader: Loader) -> CachedValue:
        snap = await self._store.read(key, self._lock.key(key))
        now = self._clock()
        env = self._fresh(snap, now)
        if env is None:
            self.metrics.misses.inc()
            return await self._recompute_or_stale(key, loader, snap, now)
        self.metrics.hits.inc()  # the value read was fresh, even if it is now refreshed early
        if not snap.locked and self.recompute_early(env, now):
            self._start_refresh(key, loader, env.created_at)
        return self._serve(env, "hit")

    def recompute_early(self, env: Envelope, now: float) -> bool:
        return xfetch_draw(env, now, self._config.xfetch_beta, self._rng)


class PureXFetchCache(RedisStrategy):
    """The paper's algorithm with no guard: every reader that draws "recompute" loads."""

    strategy = "xfetch-pure"
    retains_past_expiry = True

    async def get(self, key: str, loader: Loader) -> CachedValue:
        snap = await self._store.read(key)
        now = self._clock()
        env = self._fresh(snap, now)
        if env is None:
            self.metrics.misses.inc()
            return self._serve(await self._load(key, loader), "load")
        self.metrics.hits.inc()
        if xfetch_draw(env, now, self._config.xfetch_beta, self._rng):
            return self._serve(await self._load(key, loader), "load")
        return self._serve(env, "hit")
