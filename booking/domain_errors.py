"""What the booking domain refuses, in its own words. Nothing here knows HTTP: the edge
(booking/errors.py) maps each family to a status once, the way pretix's views translate its
CartError.

Each error carries a `kind` (the problem type's last segment, stable for clients), a sentence
for people, and the facts a client may act on (`facts`, sent as extension members). Errors
named after one thing take its id and word their own detail, so every place that raises one
says the same sentence.
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


class NotAuthenticated(BookingError):
    """The caller's proof of who they are (a sign-in code) does not hold."""

    kind = "unauthenticated"


class RateLimited(BookingError):
    """Too many of these from one caller in a window; `retry_after_seconds` says when the
    window ends (None: ask again differently, e.g. for a new code)."""

    kind = "rate-limited"

    def __init__(self, detail: str, retry_after_seconds: int | None = None, **facts: Any) -> None:
        super().__init__(detail, **facts)
        self.retry_after_seconds = retry_after_seconds


# Not found. Another user's reservation or user is answered exactly like a missing one.
class EventNotFound(NotFound):
    def __init__(self, event_id: int) -> None:
        super().__init__(f"no such event: {event_id}")
        self.event_id = event_id


class ReservationNotFound(NotFound):
    def __init__(self, reservation_id: int) -> None:
        super().__init__(f"no such reservation: {reservation_id}")
        self.reservation_id = reservation_id


class UserNotFound(NotFound):
    def __init__(self, user_id: int) -> None:
        super().__init__(f"no such user: {user_id}")
        self.user_id = user_id


class OperatorNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"no active operator named {name!r}")


# Accounts and operators.
class EmailTaken(Conflict):
    kind = "email-taken"

    def __init__(self, email: str) -> None:
        super().__init__(f"a user with email {email!r} exists")


class OperatorExists(Conflict):
    kind = "operator-exists"

    def __init__(self, name: str) -> None:
        super().__init__(f"an operator named {name!r} exists already")


class NotAnOperator(Forbidden):
    """No operator token (nor the admin token) came with the request."""

    def __init__(self) -> None:
        super().__init__("operator or admin token required")


# Sign-in codes and per-caller limits.
class CodeExpired(NotAuthenticated):
    kind = "code-expired"

    def __init__(self) -> None:
        super().__init__("no valid code for this email: ask for a new one")


class InvalidCode(NotAuthenticated):
    kind = "invalid-code"

    def __init__(self, tries_left: int) -> None:
        super().__init__(f"that code is not right ({tries_left} tries left)")


class TooManyAttempts(RateLimited):
    kind = "too-many-attempts"

    def __init__(self) -> None:
        super().__init__("too many wrong codes: ask for a new one")


class TooManyCodes(RateLimited):
    kind = "too-many-codes"


class TooManyAccounts(RateLimited):
    kind = "too-many-accounts"


# Sale and admission.
class NotOnSale(Conflict):
    kind = "not-on-sale"

    def __init__(self, event_id: int, status: str) -> None:
        super().__init__(f"event {event_id} is {status}")


class AdmissionRequired(Forbidden):
    kind = "admission-required"

    def __init__(self) -> None:
        super().__init__("this event has a waiting room: send X-Admission-Token")


class AdmissionRejected(Forbidden):
    kind = "admission-rejected"

    def __init__(self, reason: str) -> None:
        super().__init__(f"admission token rejected: {reason}", reason=reason)


# Holds.
class SeatsUnavailable(Conflict):
    kind = "seats-unavailable"


class UnknownSeats(InvalidRequest):
    kind = "unknown-seats"


class BuyerSeatCapReached(Conflict):
    kind = "buyer-seat-cap"


# Paying for and cancelling a reservation.
class HoldExpired(Conflict):
    kind = "hold-expired"

    def __init__(self, reservation_id: int) -> None:
        super().__init__(f"reservation {reservation_id} hold has expired")


class AlreadyPaid(Conflict):
    kind = "already-paid"

    def __init__(self, reservation_id: int) -> None:
        super().__init__(f"reservation {reservation_id} is already paid")


class HoldCancelled(Conflict):
    kind = "hold-cancelled"

    def __init__(self, reservation_id: int) -> None:
        super().__init__(f"reservation {reservation_id} was cancelled")


class PaymentInProgress(Conflict):
    kind = "payment-in-progress"


class IdempotencyKeyReused(InvalidRequest):
    kind = "idempotency-key-reused"

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was used for another reservation")


class NotCancellable(Conflict):
    kind = "not-cancellable"

    def __init__(self, reservation_id: int, status: str) -> None:
        super().__init__(f"reservation {reservation_id} is {status}")
