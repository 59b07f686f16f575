"""Background refresh, shared by `swr` and `xfetch`: the reader that triggers a recomputation
is answered at once with the value it read, and one task recomputes behind it.

One task per key in this process, and the strategy's Redis lock (SET NX) around the load, so
only one process refreshes a key at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from redis.asyncio import Redis

from booking.cache.base import Loader
from booking.cache.common import Clock, Random
from booking.cache.config import CacheConfig
from booking.cache.mutex import LockingStrategy

log = logging.getLogger(__name__)


class BackgroundRefreshStrategy(LockingStrategy):
    def __init__(
        self,
        redis: Redis,
        config: CacheConfig,
        *,
        clock: Clock = time.time,
        rng: Random = random.random,
    ) -> None:
        super().__init__(redis, config, clock=clock, rng=rng)
        self._refreshing: dict[str, asyncio.Task[None]] = {}

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

    async def wait_refreshes(self) -> None:
        """Wait for the background refreshes running now (tests, graceful shutdown)."""
        await asyncio.gather(*self._refreshing.values(), return_exceptions=True)

    async def aclose(self) -> None:
        tasks = list(self._refreshing.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
