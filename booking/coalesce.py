"""Coalesce one process's concurrent writes of the same kind into one round trip.

Under a sale every hold and cancel ends with the same Redis write: the event's seat-map
invalidation. Sent one per hold it costs the web process a round trip each; here calls that
arrive while a flush for their key is in flight wait and go out together in the next flush, so
a burst costs about one command per key per Redis round trip instead of one per hold.

The guarantee a caller keeps: `submit` returns only after a flush that *started after* the call
arrived has succeeded (or raises what that flush raised). A seat-map invalidation therefore still
follows the caller's commit, and the caller still hears of a failure (best_effort logs it).
`post` gives the same ordering without waiting (the hold path: its 201 does not wait for Redis);
a failed flush is then logged here.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K")
T = TypeVar("T")

# A flush that hangs (a stuck connection) must not hold up its key's later flushes for good; longer
# than a Redis Cluster failover that a call rides through (booking/redis_clients.py, about 8 s).
FLUSH_TIMEOUT_SECONDS = 10.0


@dataclass
class _Batch(Generic[T]):
    done: asyncio.Future[None]
    items: list[T] = field(default_factory=list)
    posted: bool = False  # some item's sender did not wait: a failure is logged here


class Coalescer(Generic[K, T]):
    """Per key at most one `flush(key, items)` in flight; items submitted meanwhile go together
    in the next one. Bound to the event loop it is first used on."""

    def __init__(
        self,
        flush: Callable[[K, list[T]], Awaitable[object]],
        timeout_seconds: float = FLUSH_TIMEOUT_SECONDS,
    ) -> None:
        self._flush = flush
        self._timeout_seconds = timeout_seconds
        self._waiting: dict[K, _Batch[T]] = {}
        self._running: dict[K, asyncio.Task[None]] = {}

    async def submit(self, key: K, item: T) -> None:
        batch = self._enqueue(key, item)
        # Shielded: a caller that gives up (timeout) does not cancel the others' flush.
        await asyncio.shield(batch.done)

    def post(self, key: K, item: T) -> None:
        """`submit` without waiting: the item goes out in the next flush of its key (one that
        starts after this call), and a failure of that flush is logged, not raised."""
        self._enqueue(key, item).posted = True

    def _enqueue(self, key: K, item: T) -> _Batch[T]:
        batch = self._waiting.get(key)
        if batch is None:
            batch = _Batch(asyncio.get_running_loop().create_future())
            self._waiting[key] = batch
        batch.items.append(item)
        if key not in self._running:
            self._running[key] = asyncio.get_running_loop().create_task(self._drain(key))
        return batch

    async def _drain(self, key: K) -> None:
        try:
            while (batch := self._waiting.pop(key, None)) is not None:
                try:
                    async with asyncio.timeout(self._timeout_seconds):
                        await self._flush(key, batch.items)
                except asyncio.CancelledError:
                    batch.done.cancel()
                    raise
                except Exception as exc:
                    if batch.posted:
                        log.warning("flush of %r skipped (repaired later): %r", key, exc)
                    batch.done.set_exception(exc)
                    batch.done.exception()  # retrieved: waiters that gave up are not warned about
                else:
                    batch.done.set_result(None)
        finally:
            del self._running[key]
            if (left := self._waiting.pop(key, None)) is not None:  # only when cancelled
                left.done.cancel()


_O = TypeVar("_O")


class PerOwner(Generic[_O, K, T]):
    """One Coalescer per owner object (a Redis client, a seat cache) and event loop, dropped
    with the owner."""

    def __init__(self, make_flush: Callable[[_O], Callable[[K, list[T]], Awaitable[object]]]):
        self._make_flush = make_flush
        self._by_owner: weakref.WeakKeyDictionary[
            _O, tuple[asyncio.AbstractEventLoop, Coalescer[K, T]]
        ] = weakref.WeakKeyDictionary()

    def __call__(self, owner: _O) -> Coalescer[K, T]:
        loop = asyncio.get_running_loop()
        entry = self._by_owner.get(owner)
        if entry is None or entry[0] is not loop:
            entry = (loop, Coalescer(self._make_flush(owner)))
            self._by_owner[owner] = entry
        return entry[1]
