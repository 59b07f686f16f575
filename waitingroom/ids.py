"""Path ids: the one range check every route uses (the booking app's routes and pages too).

Ids are PostgreSQL bigints, so an id outside 1..2^63-1 cannot exist: it is answered like any
unknown id (404) before it reaches a query, where asyncpg would refuse to encode it.
"""

from __future__ import annotations

PG_BIGINT_MAX = 2**63 - 1


def parse_id(value: object) -> int | None:
    """A positive bigint from a path parameter ({name:int} or a string), or None."""
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit() or len(value) > len(str(PG_BIGINT_MAX)):
            return None
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 1 <= value <= PG_BIGINT_MAX else None
