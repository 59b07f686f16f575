"""Redis side effects after a PostgreSQL commit: tried once, briefly, never failing the request.

Once PostgreSQL has committed a hold or a cancel the client must hear so (201/200); a retry after
a 503 would only meet its own seats. Each side effect has a repair path instead (the cache's
staleness bound for a lost seat-map invalidation).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# Long enough for a healthy Redis under load, short enough that a hung one barely delays a reply.
SIDE_EFFECT_TIMEOUT_SECONDS = 1.0


async def best_effort(what: str, action: Awaitable[object]) -> bool:
    """Await `action`; on a Redis error or timeout log it and return False."""
    try:
        async with asyncio.timeout(SIDE_EFFECT_TIMEOUT_SECONDS):  # no extra task, unlike wait_for
            await action
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("%s skipped (repaired later): %r", what, exc)
        return False
    return True
