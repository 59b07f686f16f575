"""The status values the service stores and answers, one StrEnum per column or derived state.

Each enum's values are exactly the column's CHECK constraint in booking/migrations (a test
reads the SQL and compares). A member *is* its string ("held" == ReservationStatus.HELD,
json.dumps and asyncpg see the plain text), so rows read from PostgreSQL compare equal to
members without conversion.

SQL text keeps its literals ('held', 'paid', ...): a query is one fixed string PostgreSQL plans
once, and passing statuses as parameters would only add parameters to hot queries.
"""

from __future__ import annotations

from enum import StrEnum


class EventStatus(StrEnum):
    """events.status as stored (what an admin set); see booking.sale for the effective one."""

    SCHEDULED = "scheduled"
    ON_SALE = "on_sale"
    CLOSED = "closed"


class ReservationStatus(StrEnum):
    """reservations.status: held -> paid | expired | cancelled, paid -> cancelled (refund)."""

    HELD = "held"
    PAID = "paid"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class PaymentStatus(StrEnum):
    """payments.status: pending -> succeeded | failed, succeeded -> refunded."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDED = "refunded"


class SeatStatus(StrEnum):
    """A seat's status, derived from its active reservation (booking.events.SEAT_STATUS_SQL)."""

    AVAILABLE = "available"
    HELD = "held"
    SOLD = "sold"


class LineState(StrEnum):
    """The waiting-room page's state of a sale (booking.linestatus.LineStatus.state)."""

    ON_SALE = "on_sale"
    SCHEDULED = "scheduled"
    CLOSED = "closed"
    SOLD_OUT = "sold_out"
    NO_LINE = "no_line"
