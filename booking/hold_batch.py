"""One process's holds sent to PostgreSQL together: the holds that arrive while the process's
previous call is in flight go out in the next one, as one `hold_seats_batch()` call (one round
trip, one transaction; migration 007).

Under a surge a hold's web cost was mostly its own round trip, and PostgreSQL's mostly its own
transaction; a batch of n shares both. A hold that finds no call in flight (fewer than
MAX_IN_FLIGHT) goes out at once, alone (the plain `hold_seats()` call), so nothing waits when
there is no queue. Each request is still decided alone, in arrival order, with the same locks and
all-or-nothing refusals (007's header); only the commit is shared.

Should a batch fail as a whole on a conflict that single holds would have met one at a time
(the unique index behind the seat locks, a deadlock or serialization failure), its requests are
retried one by one, so one request's conflict never becomes another's error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import asyncpg

from booking import metrics

# One call in flight per web process: with WEB_CONCURRENCY at the number of cores, PostgreSQL
# still gets a transaction per core, and the holds that queue meanwhile make bigger batches
# (fewer commits: PostgreSQL's CPU per hold is the larger half). Two in flight measured no
# better for the web process and worse for PostgreSQL.
MAX_IN_FLIGHT = 1
# Bounds the time a batch's seat locks are held and the size of one call.
MAX_BATCH = 64

_HOLD_SEATS = "SELECT * FROM hold_seats($1, $2, $3::bigint[], $4, $5)"
_HOLD_SEATS_BATCH = (
    "SELECT * FROM hold_seats_batch($1::bigint[], $2::bigint[], $3::int[], $4::bigint[], $5, $6)"
    " ORDER BY request"
)
# What a batch may fail with where the same requests one at a time would each get their answer.
_RETRY_ALONE = (
    asyncpg.UniqueViolationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)


@dataclass(frozen=True)
class HoldRequest:
    user_id: int
    event_id: int
    seat_ids: list[int]  # distinct and sorted (hold_seats' lock order)


_Outcome: TypeAlias = asyncpg.Record | BaseException


class HoldBatcher:
    """Sends the holds of the process (its event loop) to `pool`; `hold()` answers each
    request's row of hold_seats(). Bound to the event loop it is first used on."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        hold_seconds: float,
        default_cap: int,
        *,
        max_batch: int = MAX_BATCH,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError("max_batch and max_in_flight must be at least 1")
        self._pool = pool
        self._hold_seconds = float(hold_seconds)
        self._default_cap = default_cap
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._waiting: list[tuple[HoldRequest, asyncio.Future[asyncpg.Record]]] = []
        self._in_flight: set[asyncio.Task[None]] = set()

    async def hold(self, request: HoldRequest) -> asyncpg.Record:
        answer: asyncio.Future[asyncpg.Record] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, answer))
        if len(self._in_flight) < self._max_in_flight:
            self._send_next()
        return await answer

    def _send_next(self) -> None:
        batch = self._waiting[: self._max_batch]
        del self._waiting[: self._max_batch]
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._in_flight.add(task)  # a strong reference until it is done
        task.add_done_callback(self._batch_done)

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if self._waiting and len(self._in_flight) < self._max_in_flight:
            self._send_next()

    async def _run(self, batch: list[tuple[HoldRequest, asyncio.Future[asyncpg.Record]]]) -> None:
        metrics.HOLD_BATCH_SIZE.observe(len(batch))
        try:
            outcomes = await self._send([request for request, _ in batch])
        except asyncio.CancelledError:  # the server is stopping
            for _, answer in batch:
                answer.cancel()
            raise
        except Exception as exc:  # the whole call failed (connection lost, pool closed)
            outcomes = [exc] * len(batch)
        for (_, answer), outcome in zip(batch, outcomes, strict=True):
            if answer.done():  # its caller gave up (the hold may still have committed)
                continue
            if isinstance(outcome, BaseException):
                answer.set_exception(outcome)
            else:
                answer.set_result(outcome)

    async def _send(self, requests: Sequence[HoldRequest]) -> list[_Outcome]:
        if len(requests) == 1:
            return [await self._one(requests[0])]
        try:
            rows = await self._pool.fetch(
                _HOLD_SEATS_BATCH,
                [r.user_id for r in requests],
                [r.event_id for r in requests],
                [len(r.seat_ids) for r in requests],
                [seat for r in requests for seat in r.seat_ids],
                self._hold_seconds,
                self._default_cap,
            )
        except _RETRY_ALONE:
            metrics.HOLD_BATCHES_RETRIED.inc()
            return [await self._one_or_error(r) for r in requests]
        if len(rows) != len(requests):
            raise RuntimeError(f"hold_seats_batch answered {len(rows)} rows for {len(requests)}")
        return list(rows)

    async def _one(self, request: HoldRequest) -> asyncpg.Record:
        row = await self._pool.fetchrow(
            _HOLD_SEATS,
            request.user_id,
            request.event_id,
            request.seat_ids,
            self._hold_seconds,
            self._default_cap,
        )
        assert row is not None
        return row

    async def _one_or_error(self, request: HoldRequest) -> _Outcome:
        try:
            return await self._one(request)
        except asyncpg.PostgresError as exc:
            return exc
