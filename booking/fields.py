"""Field types of request bodies: text and instants PostgreSQL can store, refused up front (422)
instead of failing inside a query (NUL bytes in text, instants before year 1 in UTC) or being
stored as something else (asyncpg writes datetime.min/max as -infinity/infinity)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field
from pydantic_core import PydanticCustomError

# C0 and C1 control characters and DEL: PostgreSQL refuses NUL, and none belongs in a name.
CONTROL_RANGE = r"\u0000-\u001f\u007f-\u009f"
NO_CONTROL_PATTERN = rf"^[^{CONTROL_RANGE}]*$"
_CONTROL = re.compile(f"[{CONTROL_RANGE}]")
_EMAIL_PART = rf"[^@\s{CONTROL_RANGE}]+"
EMAIL_PATTERN = rf"^{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}$"


def _refuse_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise PydanticCustomError(
            "control_character",
            "must not contain control characters (U+0000-U+001F, U+007F-U+009F)",
        )
    return value


# A ticketing service has no business before the epoch or in the year 9999.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def _storable_instant(value: datetime) -> datetime:
    try:
        in_range = EARLIEST <= value.astimezone(UTC) < LATEST
    except OverflowError:  # before year 1 or after 9999 once in UTC
        in_range = False
    if not in_range:
        raise PydanticCustomError(
            "instant_out_of_range",
            "must be from 1970-01-01T00:00Z up to (not including) 9999-01-01T00:00Z",
        )
    return value


# The pattern documents the rule in the schema; the validator gives the readable message.
PlainText = Annotated[
    str,
    AfterValidator(_refuse_control_characters),
    Field(json_schema_extra={"pattern": NO_CONTROL_PATTERN}),
]
Instant = Annotated[AwareDatetime, AfterValidator(_storable_instant)]
