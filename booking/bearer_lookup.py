"""Bearer-token lookups that miss the in-process cache, coalesced into one query.

During a surge many first-contact requests (each a fresh token) arrive in the same event-loop
iteration; instead of one pooled query each, the hashes waiting at the end of the iteration go
to PostgreSQL as one `= ANY($1)` query. A lone lookup is sent at once, so an idle server waits
for nothing.
"""

from __future__ import annotations

import asyncio

import asyncpg

from booking.metrics import BEARER_LOOKUPS

MAX_BATCH = 500


class BearerLookup:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._pending: dict[bytes, asyncio.Future[int | None]] = {}
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def user_id(self, token_hash: bytes) -> int | None:
        """The id of the user with this token hash, or None."""
        fut = self._pending.get(token_hash)
        if fut is None:
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            self._pending[token_hash] = fut
            if len(self._pending) >= MAX_BATCH:
                self._flush()
            elif not self._scheduled:
                self._scheduled = True
                loop.call_soon(self._flush)
        return await asyncio.shield(fut)

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, {}
        if batch:
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: dict[bytes, asyncio.Future[int | None]]) -> None:
        BEARER_LOOKUPS.inc(len(batch))
        try:
            if len(batch) == 1:
                (digest,) = batch
                value = await self._pool.fetchval(
                    "SELECT id FROM users WHERE token_hash = $1", digest
                )
                found = {digest: int(value)} if value is not None else {}
            else:
                rows = await self._pool.fetch(
                    "SELECT id, token_hash FROM users WHERE token_hash = ANY($1::bytea[])",
                    list(batch),
                )
                found = {bytes(r["token_hash"]): int(r["id"]) for r in rows}
        except BaseException as exc:  # every waiter gets the error (e.g. 503 on refused DB)
            for fut in batch.values():
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
            if not isinstance(exc, Exception):
                raise
            return
        for digest, fut in batch.items():
            if not fut.done():
                fut.set_result(found.get(digest))
