"""What the booking domain refuses, in its own words. Nothing here knows HTTP: the edge
(booking/errors.py) maps each family to a status once, the way pretix's views translate its
CartError.

Each error carries a `kind` (the problem type's last segment, stable for clients), a sentence
for people, and the facts a client may act on (`facts`, sent as extension members).
"""

from __future__ import annotations

from typing import Any, ClassVar


class BookingError(Exception):
    """Base of every refusal by the booking domain."""

    kind: ClassVar[str] = "booking-error"

    def __init__(self, detail: str, **facts: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.facts = facts


# The families the edge maps to a status; a concrete error subclasses exactly one of them.
class NotFound(BookingError):
    """The thing named does not exist (or is not the caller's to see)."""

    kind = "not-found"


class Conflict(BookingError):
    """The request is well formed but the current state refuses it."""

    kind = "conflict"


class InvalidRequest(BookingError):
    """The request names something the domain cannot accept (an unknown seat, a bad value)."""

    kind = "validation"


class Forbidden(BookingError):
    """The caller is known but may not do this."""

    kind = "forbidden"


# Holds.
class SeatsUnavailable(Conflict):
    kind = "seats-unavailable"


class UnknownSeats(InvalidRequest):
    kind = "unknown-seats"


class BuyerSeatCapReached(Conflict):
    kind = "buyer-seat-cap"
