"""What a worker process keeps between jobs: one asyncio loop on its own thread, with the
PostgreSQL pool, the Redis client, the seat cache and the provider opened once.

RQ runs jobs on plain threads (workers/threads.py: PAYMENT_CONCURRENCY of them); each job hands
its coroutine to this loop and waits, so N payments wait on the provider at once while the
pool's connections are reused instead of opened per job.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import asyncpg
import redis.asyncio as aioredis

from booking.cache import SeatCache, build_seat_cache
from booking.metrics import instrument_connection
from booking.provider import BoundedProvider, open_provider
from booking.redis_clients import build_state_redis, close_state_redis
from booking.settings import Settings, load_settings
from waitingroom import WaitingRoom

T = TypeVar("T")

# A job's bound (the role of RQ's job timeout, whose signal only works on the main thread).
JOB_TIMEOUT_SECONDS = 60.0


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="jobs-loop", daemon=True)
        self._thread.start()
        self.pool: asyncpg.Pool
        self.provider_pool: asyncpg.Pool
        self.provider: BoundedProvider
        self.redis: aioredis.Redis
        self.seat_cache: SeatCache
        self.waiting_room: WaitingRoom
        self.run(self._open())

    async def _open(self) -> None:
        # min_size 0: the pool opens even while PostgreSQL is down, and jobs fail (and retry)
        # until it is back, instead of the worker failing to start.
        size = jobs_pool_size(self.settings.payment_concurrency)
        self.pool = await _jobs_pool(self.settings.database_url, size)
        self.provider_pool, provider = await open_provider(self.settings, self.pool)
        # PAYMENT_CONCURRENCY calls at the provider at once, however many RQ threads run.
        self.provider = BoundedProvider(provider, self.settings.payment_concurrency)
        self.redis = build_state_redis(self.settings, max_connections=32)
        self.seat_cache = build_seat_cache(self.settings, self.redis)
        self.waiting_room = WaitingRoom(
            self.redis, self.settings.admission_secret, key_prefix=self.settings.redis_key_prefix
        )

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = JOB_TIMEOUT_SECONDS) -> T:
        """Run `coro` on the loop and wait for it (called from RQ's job threads); past
        `timeout` it is cancelled and TimeoutError fails the job (RQ retries it)."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        async def _close() -> None:
            await self.seat_cache.aclose()
            await close_state_redis(self.redis)
            if self.provider_pool is not self.pool:
                await self.provider_pool.close()
            await self.pool.close()

        self.run(_close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


def jobs_pool_size(payment_concurrency: int) -> int:
    """PostgreSQL connections for PAYMENT_CONCURRENCY payments: far fewer than the payments,
    since none holds a connection while the provider answers (a payment uses one for its few
    short statements, a few ms of its ~latency). A quarter of the slots plus 4 leaves room for
    slow commits and a sweep without tying up a PostgreSQL backend per slot."""
    return max(4, payment_concurrency // 4 + 4)


async def _no_session_reset(conn: asyncpg.Connection) -> None:
    """Jobs keep no session state (no LISTEN, SET or advisory locks): skip the reset query
    asyncpg runs at every release, one round trip per pool call."""


async def _jobs_pool(url: str, size: int) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        url,
        min_size=0,
        max_size=size,
        command_timeout=30,
        init=instrument_connection,
        reset=_no_session_reset,
    )
    assert pool is not None
    return pool


_lock = threading.Lock()
_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The process's runtime, opened at first use (the first job, in any thread)."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = Runtime(load_settings())
        return _runtime


def close_runtime() -> None:
    global _runtime
    with _lock:
        if _runtime is not None:
            _runtime.close()
            _runtime = None
