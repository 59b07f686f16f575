"""Strategy `xfetch`: probabilistic early recomputation (Vattani, Chierichetti & Lowenstein,
"Optimal Probabilistic Cache Stampede Prevention", VLDB 2015), with a recompute guard.

Each value carries delta (how long its recomputation took) and its logical expiry. A reader
recomputes early when  now - delta * beta * ln(U) >= expiry,  U uniform in (0, 1]; i.e. with
probability exp(-(expiry - now) / (delta * beta)), which rises as expiry nears, so under steady
load one reader refreshes shortly before expiry and the key never actually expires. The Redis
TTL is longer than the logical one so the value is there to be read up to and past expiry.

The formula decides *when*; it cannot stop two readers that draw "recompute" within the same
delta from both loading, and it offers nothing on a cold or invalidated key. So `xfetch` adds a
guard (the `lock` strategy's Redis mutex) that decides *who*: an early recompute is taken only by
the reader that wins the lock (the others keep serving the still-fresh value: nobody waits), and
a cold key is loaded once while the others wait. `xfetch-pure` is the paper's algorithm alone,
kept so the experiment can show what the guard buys.
"""

from __future__ import annotations

import math

from booking.cache.base import CachedValue, Loader
from booking.cache.envelope import Envelope
from booking.cache.mutex import LockingStrategy


def should_recompute(now: float, expiry: float, delta: float, beta: float, u: float) -> bool:
    """The XFetch test; `u` must be in (0, 1] (ln(0) is undefined)."""
    return now - delta * beta * math.log(u) >= expiry


class XFetchCache(LockingStrategy):
    strategy = "xfetch"
    serves_stale = False  # invalidation deletes: after a write nobody is served the old map
    guarded = True

    async def get(self, key: str, loader: Loader) -> CachedValue:
        snap = await self._store.read(key, self._lock.key(key) if self.guarded else None)
        now = self._clock()
        env = self._fresh(snap, now)
        if env is None:
            self.metrics.misses.inc()
            if not self.guarded:
                return self._serve(await self._load(key, loader), "load")
            return await self._lock_or_wait(key, loader)
        self.metrics.hits.inc()  # the value read was fresh, even if we now recompute early
        if not self.recompute_early(env, now):
            return self._serve(env, "hit")
        if not self.guarded:
            return self._serve(await self._load(key, loader), "load")
        token = None if snap.locked else await self._lock.acquire(key)
        if token is None:  # someone else is already recomputing: the fresh value will do
            return self._serve(env, "hit")
        try:
            return self._serve(await self._load(key, loader), "load")
        finally:
            await self._lock.release(key, token)

    def recompute_early(self, env: Envelope, now: float) -> bool:
        u = 1.0 - self._rng()  # [0, 1) -> (0, 1]
        return should_recompute(now, env.fresh_until, env.delta, self._config.xfetch_beta, u)


class PureXFetchCache(XFetchCache):
    """The paper's algorithm with no guard: every reader that draws "recompute" loads."""

    strategy = "xfetch-pure"
    guarded = False
