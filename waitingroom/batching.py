"""Automatic pipelining of script calls.

On this kind of machine a Redis round trip (two loopback syscalls) costs more CPU than the
HTTP handling around it. Calls issued in the same event-loop iteration - i.e. by concurrent
requests - are therefore sent as one non-transactional pipeline: one write and one read for
the whole batch. Every script stays atomic on its own and runs in call order, so the queue
semantics do not change; a lone call goes out directly without waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

_Call = tuple[AsyncScript, Sequence[Any], Sequence[Any], "asyncio.Future[Any]"]


class ScriptBatcher:
    def __init__(self, redis: Redis, max_batch: int = 256) -> None:
        self._redis = redis
        self._max_batch = max_batch
        self._pending: list[_Call] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()  # keep running flushes referenced

    async def call(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending.append((script, keys, args, fut))
        if len(self._pending) >= self._max_batch:
            self._flush()
        elif not self._scheduled:
            # Flush after the other ready callbacks (other requests) had a chance to add theirs.
            self._scheduled = True
            loop.call_soon(self._flush)
        return await fut

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[_Call]) -> None:
        if len(batch) == 1:
            script, keys, args, fut = batch[0]
            await self._settle_direct(script, keys, args, fut)
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for script, keys, args, _ in batch:
                    # Not pipe.evalsha(): a Redis Cluster pipeline refuses that method by name,
                    # yet routes the raw command by its keys' slot like any other.
                    pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
                results = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # connection errors, cancellation: fail every caller
            for *_, fut in batch:
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
            if not isinstance(exc, Exception):
                raise
            return
        for (script, keys, args, fut), result in zip(batch, results, strict=True):
            if isinstance(result, NoScriptError):
                # Script cache flushed (Redis restart): the direct call reloads it.
                await self._settle_direct(script, keys, args, fut)
            elif fut.done():
                continue
            elif isinstance(result, Exception):
                fut.set_exception(result)
            else:
                fut.set_result(result)

    @staticmethod
    async def _settle_direct(
        script: AsyncScript, keys: Sequence[Any], args: Sequence[Any], fut: asyncio.Future[Any]
    ) -> None:
        try:
            result = await script(keys=keys, args=args)
        except Exception as exc:
            if not fut.done():
                fut.set_exception(exc)
            return
        if not fut.done():
            fut.set_result(result)
