"""The machinery every Redis-backed strategy shares, so a strategy file holds only its decisions.

- RedisStore: Redis I/O of envelopes and invalidation watermarks (no policy decisions).
- RedisLock: a mutex per key, SET NX PX with a random token, released only by its owner.
- RedisStrategy: timed loads, serving, invalidation, and the two ways of recomputing once:
  recompute-or-wait under the lock (used by lock, swr and xfetch) and a background refresh
  (swr and xfetch). Its `get` is plain cache-aside (ttl); strategies override `get` or the
  `_on_miss` hook.

Waiters poll Redis with capped exponential backoff (plus jitter, so they do not poll in step).
A lock holder that dies cannot block anyone beyond the lock TTL: the key expires and the next poll
takes the lock. A background refresh is one task per key in this process, under the lock, so only
one process refreshes a key at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from dataclasses import dataclass
from typing import ClassVar

from redis.asyncio import Redis

from booking.cache.base import (
    RETAIN_MARGIN_SECONDS,
    CacheConfig,
    CachedValue,
    Clock,
    Envelope,
    Loader,
    Random,
    Source,
    StrategyMetrics,
    decode,
    encode,
    for_strategy,
)

log = logging.getLogger(__name__)

POLL_FIRST_SECONDS = 0.005
POLL_MAX_SECONDS = 0.05

# Raise the watermark only forwards (concurrent invalidations may arrive out of order), keep it
# as long as any value it must outrank, and optionally drop the value in the same round trip.
_INVALIDATE = """
local cur = redis.call('GET', KEYS[2])
if (not cur) or tonumber(ARGV[1]) > tonumber(cur) then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
else
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
if ARGV[3] == '1' then redis.call('DEL', KEYS[1]) end
return 1
"""

# Compare-and-delete: a holder whose lock already expired (and was taken by someone else) must not
# delete the new holder's lock.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def watermark_key(key: str) -> str:
    return f"{key}:inv"


@dataclass(frozen=True, slots=True)
class Snapshot:
    envelope: Envelope | None
    invalidated_at: float  # 0.0 if never invalidated (or the watermark has expired)
    locked: bool = False  # only meaningful when read with a lock key


def _to_float(raw: bytes | str | None) -> float:
    return float(raw) if raw is not None else 0.0


class RedisStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._invalidate = redis.register_script(_INVALIDATE)

    async def read(self, key: str, lock_key: str | None = None) -> Snapshot:
        """Value and watermark (and whether `lock_key` exists) in one round trip."""
        keys = (
            [key, watermark_key(key)] if lock_key is None else [key, watermark_key(key), lock_key]
        )
        raw = await self._redis.mget(keys)
        blob = raw[0]
        env = decode(blob.encode() if isinstance(blob, str) else blob) if blob is not None else None
        return Snapshot(env, _to_float(raw[1]), lock_key is not None and raw[2] is not None)

    async def write(self, key: str, env: Envelope, keep_seconds: float) -> None:
        await self._redis.set(key, encode(env), px=max(1, round(keep_seconds * 1000)))

    async def invalidate(self, key: str, at: float, keep_seconds: float, delete: bool) -> None:
        await self._invalidate(
            keys=[key, watermark_key(key)],
            args=[repr(at), max(1, round(keep_seconds * 1000)), "1" if delete else "0"],
        )


class RedisLock:
    def __init__(self, redis: Redis, ttl_seconds: float, suffix: str = ":lock") -> None:
        self._redis = redis
        self._ttl_ms = max(1, round(ttl_seconds * 1000))
        self._suffix = suffix
        self._release = redis.register_script(_RELEASE)

    def key(self, key: str) -> str:
        return key + self._suffix

    async def acquire(self, key: str) -> str | None:
        """The owner token, or None if the lock is held. Expires by itself (crash-safe)."""
        token = secrets.token_hex(16)
        ok = await self._redis.set(self.key(key), token, nx=True, px=self._ttl_ms)
        return token if ok else None

    async def release(self, key: str, token: str) -> bool:
        return bool(await self._release(keys=[self.key(key)], args=[token]))


class RedisStrategy:
    strategy: str = ""
    # Invalidation keeps the value as a stale-but-servable copy (lock, swr) instead of deleting it.
    serves_stale: ClassVar[bool] = False
    # Redis keeps values until they can no longer be served (age B), not just until logical expiry.
    retains_past_expiry: ClassVar[bool] = False

    def __init__(
        self,
        redis: Redis,
        config: CacheConfig,
        *,
        clock: Clock = time.time,
        rng: Random = random.random,
    ) -> None:
        self._store = RedisStore(redis)
        self._lock = RedisLock(redis, config.lock_ttl)
        self._config = config
        self._clock = clock
        self._rng = rng
        self._jitter = random.Random()  # backoff jitter; separate from the injectable rng
        self.metrics: StrategyMetrics = for_strategy(self.strategy)
        # Tasks this cache owns, cancelled by aclose(): shared loads (singleflight) and
        # background refreshes (swr, xfetch), one per key.
        self._inflight: dict[str, asyncio.Task[Envelope]] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}

    # --- the read path: plain cache-aside unless a strategy overrides it ---------------------

    async def get(self, key: str, loader: Loader) -> CachedValue:
        snap = await self._store.read(key)
        env = self._fresh(snap, self._clock())
        if env is not None:
            self.metrics.hits.inc()
            return self._serve(env, "hit")
        self.metrics.misses.inc()
        return await self._on_miss(key, loader)

    async def _on_miss(self, key: str, loader: Loader) -> CachedValue:
        return self._serve(await self._load(key, loader), "load")

    async def invalidate(self, key: str) -> None:
        # Later readers must not join a load that may have read the seats before the change.
        self._inflight.pop(key, None)
        if not self._config.invalidate_on_write:
            return
        await self._store.invalidate(
            key, self._clock(), self._config.retain_seconds(), delete=not self.serves_stale
        )

    async def wait_refreshes(self) -> None:
        """Wait for the background refreshes running now (tests, graceful shutdown)."""
        await asyncio.gather(*self._refreshing.values(), return_exceptions=True)

    async def aclose(self) -> None:
        tasks: list[asyncio.Task[None] | asyncio.Task[Envelope]] = [
            *self._inflight.values(),
            *self._refreshing.values(),
        ]
        self._inflight.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # --- freshness, serving, loading ---------------------------------------------------------

    def _fresh(self, snap: Snapshot, now: float) -> Envelope | None:
        env = snap.envelope
        if env is not None and self._config.is_fresh(env, now, snap.invalidated_at):
            return env
        return None

    def _servable(self, snap: Snapshot, now: float) -> Envelope | None:
        env = snap.envelope
        if env is not None and self._config.is_servable(env, now):
            return env
        return None

    def _serve(self, env: Envelope, source: Source, now: float | None = None) -> CachedValue:
        """`now`: the time the value was judged servable, so the reported age is the judged one."""
        now = self._clock() if now is None else now
        age = env.age(now)
        if source == "stale":
            self.metrics.stale_served.inc()
            self.metrics.stale_age_seconds.observe(age)
        return CachedValue(
            env.value, source == "stale", age, source, env.created_at, env.fresh_until
        )

    async def _load(self, key: str, loader: Loader) -> Envelope:
        """Run the loader (one database recomputation), store and return the new envelope."""
        created_at = self._clock()  # before the query: the data is at least this recent
        started = time.perf_counter()
        self.metrics.loads.inc()
        value = await loader()
        delta = time.perf_counter() - started
        self.metrics.load_seconds.observe(delta)
        stored_at = self._clock()
        env = Envelope(
            value, created_at, delta, self._config.fresh_until(created_at, stored_at, self._rng())
        )
        if self.retains_past_expiry:
            keep = created_at + self._config.stale_bound + RETAIN_MARGIN_SECONDS - stored_at
        else:
            keep = env.fresh_until - stored_at
        if keep > 0:  # a load slower than the bound is handed back but not cached
            await self._store.write(key, env, keep)
        return env

    # --- one recomputation per key across processes: the lock --------------------------------

    async def _load_locked(self, key: str, loader: Loader, token: str) -> CachedValue:
        """Recompute while holding the lock; the lock is released even if this task is cancelled."""
        try:
            # Someone may have refreshed between our read and our acquire: don't load twice.
            env = self._fresh(await self._store.read(key), self._clock())
            if env is not None:
                return self._serve(env, "miss")
            return self._serve(await self._load(key, loader), "load")
        finally:
            await self._lock.release(key, token)

    async def _recompute_or_stale(
        self, key: str, loader: Loader, snap: Snapshot, now: float
    ) -> CachedValue:
        """The value is not fresh: the lock winner recomputes; the others take the stale copy
        if one is still servable (age within the stale bound), else wait for the winner's."""
        token = None if snap.locked else await self._lock.acquire(key)
        if token is not None:
            return await self._load_locked(key, loader, token)
        stale = self._servable(snap, now)
        if stale is not None:
            return self._serve(stale, "stale", now)
        return await self._wait_for_fresh(key, loader)

    async def _lock_or_wait(self, key: str, loader: Loader) -> CachedValue:
        token = await self._lock.acquire(key)
        if token is not None:
            return await self._load_locked(key, loader, token)
        return await self._wait_for_fresh(key, loader)

    async def _wait_for_fresh(self, key: str, loader: Loader) -> CachedValue:
        self.metrics.lock_waits.inc()
        # Only a live holder slower than two lock TTLs gets here: stop waiting and load.
        deadline = time.monotonic() + 2 * self._config.lock_ttl
        delay = POLL_FIRST_SECONDS
        lock_key = self._lock.key(key)
        while True:
            await asyncio.sleep(delay * (0.5 + self._jitter.random()))
            delay = min(delay * 2, POLL_MAX_SECONDS)
            snap = await self._store.read(key, lock_key)
            env = self._fresh(snap, self._clock())
            if env is not None:
                return self._serve(env, "miss")
            if not snap.locked:  # holder finished without a fresh value, died, or its lock expired
                token = await self._lock.acquire(key)
                if token is not None:
                    return await self._load_locked(key, loader, token)
            if time.monotonic() > deadline:
                return self._serve(await self._load(key, loader), "load")

    # --- background refresh: the reader is answered at once, one task recomputes behind it ----

    def _start_refresh(self, key: str, loader: Loader, seen_created_at: float) -> None:
        """Recompute `key` in the background unless a refresh already runs here."""
        if key in self._refreshing:
            return
        task = asyncio.create_task(self._refresh(key, loader, seen_created_at))
        self._refreshing[key] = task
        task.add_done_callback(lambda t: self._refreshing.pop(key, None))

    async def _refresh(self, key: str, loader: Loader, seen_created_at: float) -> None:
        token = await self._lock.acquire(key)
        if token is None:
            return  # another process is refreshing
        try:
            # Load unless someone stored a fresh value newer than the one that triggered us.
            env = self._fresh(await self._store.read(key), self._clock())
            if env is None or env.created_at <= seen_created_at:
                await self._load(key, loader)
        except Exception:
            # Readers keep getting what they got (within the bound) and the next one retries.
            log.exception("background refresh of %s failed", key)
        finally:
            await self._lock.release(key, token)
