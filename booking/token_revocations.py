"""Each web process's copy of the users' token revocations, so a tagged bearer token
(booking/bearer_tokens.py) is trusted without a PostgreSQL query for its whole life, not only
in its first AUTH_CACHE_SECONDS.

A user's tokens issued at or before their `token_revocations.revoked_through` (an epoch second)
are revoked; the row moves whenever the user's token hash changes (migration 009's trigger: the
rotation route or an operator's SQL alike). A process reads the whole table at start and every
FULL_READ_SECONDS, and in between, `READS_PER_BOUND` times per bound, only the rows revoked
lately: since the latest revocation it has seen, less LOOKBACK_SECONDS, so one committed after
a later one was read is still seen.

The bound: a process trusts its copy only while its last successful read started less than
`bound_seconds` (AUTH_REVOCATION_SECONDS) ago, so a token revoked at T is refused by every
process from T + bound on. A process whose reads fail or lag (PostgreSQL slow or away) stops
trusting tags past their fresh window and looks tokens up instead (booking/auth.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg

from booking.bearer_tokens import Tagged
from booking.metrics import TOKEN_REVOCATION_READS_FAILED

log = logging.getLogger(__name__)

READS_PER_BOUND = 5
FULL_READ_SECONDS = 300.0
LOOKBACK_SECONDS = 120.0

_ALL = "SELECT user_id, revoked_through, revoked_at FROM token_revocations"
_SINCE = _ALL + " WHERE revoked_at > $1"


class TokenRevocations:
    def __init__(
        self,
        pool: asyncpg.Pool,
        bound_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self.bound_seconds = bound_seconds
        self._clock = clock
        self._through: dict[int, int] = {}  # user id -> tokens issued up to this second revoked
        self._latest: datetime | None = None  # the latest revoked_at read
        self._read_started: float | None = None  # of the last successful read
        self._full_read_started: float | None = None

    def current(self) -> bool:
        """Whether the copy may vouch for tokens: its last read started within the bound."""
        started = self._read_started
        return started is not None and self._clock() - started < self.bound_seconds

    def revoked(self, claim: Tagged) -> bool:
        through = self._through.get(claim.user_id)
        return through is not None and claim.issued_at <= through

    def note(self, user_id: int, through: int) -> None:
        """A revocation this process made itself: refused here at once, not a read later."""
        self._through[user_id] = max(through, self._through.get(user_id, through))

    async def refresh(self) -> None:
        """One read: the whole table, or the rows revoked since the last one (see above)."""
        started = self._clock()
        latest = self._latest
        full = (
            latest is None
            or self._full_read_started is None
            or started - self._full_read_started >= FULL_READ_SECONDS
        )
        if latest is None or full:
            rows = await self._pool.fetch(_ALL)
        else:
            rows = await self._pool.fetch(_SINCE, latest - timedelta(seconds=LOOKBACK_SECONDS))
        for row in rows:
            self.note(int(row["user_id"]), int(row["revoked_through"]))
            at: datetime = row["revoked_at"]
            if self._latest is None or at > self._latest:
                self._latest = at
        if full:
            self._full_read_started = started
        self._read_started = started

    async def run(self, stop: asyncio.Event) -> None:
        """Read until `stop`; a failed read is logged once per run of failures, and the copy
        stops vouching once it is older than the bound."""
        failing = False
        while not stop.is_set():
            try:
                await self.refresh()
                failing = False
            except Exception:  # the loop must outlive any failure; a stale copy vouches for none
                TOKEN_REVOCATION_READS_FAILED.inc()
                if not failing:
                    log.warning("could not read token revocations", exc_info=True)
                failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.bound_seconds / READS_PER_BOUND)
