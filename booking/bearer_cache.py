"""Per-process cache of bearer token hash -> user id, so a join or a hold does not query
PostgreSQL to authenticate.

A hit is trusted for at most `ttl_seconds`. Revocation: tokens are revoked by changing or
deleting the user's `token_hash` row; a process that cached the old token keeps accepting it
for at most `ttl_seconds` (the stated bound). Unknown tokens are never cached, so a new user's
token works at once and a flood of bad tokens keeps asking PostgreSQL (401s are cheap there).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class BearerCache:
    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[int, float]] = OrderedDict()

    def get(self, token_hash: bytes) -> int | None:
        hit = self._entries.get(token_hash)
        if hit is None:
            return None
        user_id, stored_at = hit
        if self._clock() - stored_at >= self.ttl_seconds:
            del self._entries[token_hash]
            return None
        return user_id

    def put(self, token_hash: bytes, user_id: int) -> None:
        if self.ttl_seconds <= 0:
            return
        self._entries[token_hash] = (user_id, self._clock())
        self._entries.move_to_end(token_hash)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
