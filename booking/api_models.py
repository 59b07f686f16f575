"""The JSON the API answers with, as pydantic models: they document the responses in the OpenAPI
schema (booking/openapi.py), and the schema-driven fuzz test checks every answer against them.

Objects stay open (extra fields allowed) so a field added later does not break a client.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Id = int


class Problem(BaseModel):
    """RFC 9457 problem details: every 4xx and 5xx answer has this shape
    (`application/problem+json`); some carry more fields (`errors`, `seat_ids`, `reason`, ...)."""

    type: str = Field(description="URI naming the kind of problem (last segment: its kind)")
    title: str
    status: int
    detail: str


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(description="`ok` or `error: <kind>` per backing store")


class UserCreated(BaseModel):
    id: Id
    name: str
    email: str
    token: str = Field(description="bearer token, shown once: send it as `Authorization: Bearer`")


class User(BaseModel):
    id: Id
    name: str
    email: str
    created_at: str = Field(json_schema_extra={"format": "date-time"})


class WaitingRoomSettings(BaseModel):
    enabled: bool
    admit_per_second: int
    max_active: int
    admission_window_seconds: int


class SeatCounts(BaseModel):
    available: int
    held: int
    sold: int
    total: int


class Event(BaseModel):
    id: Id
    name: str
    venue: str
    starts_at: str = Field(json_schema_extra={"format": "date-time"})
    status: Literal["scheduled", "on_sale", "closed"]
    sale_opens_at: str | None
    waiting_room: WaitingRoomSettings
    seats: SeatCounts


class Seat(BaseModel):
    id: Id
    section: str
    row: str
    number: int
    price: int = Field(description="in cents")
    status: Literal["available", "held", "sold"]


class Hold(BaseModel):
    reservation_id: Id
    event_id: Id
    seat_ids: list[Id]
    amount: int = Field(description="in cents")
    expires_at: str = Field(json_schema_extra={"format": "date-time"})


class ReservedSeat(BaseModel):
    id: Id
    section: str
    row: str
    number: int
    price: int


class PaymentState(BaseModel):
    id: Id
    status: Literal["pending", "succeeded", "failed", "refunded"]
    failure_reason: str | None


class Reservation(BaseModel):
    id: Id
    event_id: Id
    status: Literal["held", "paid", "expired", "cancelled"]
    seat_ids: list[Id]
    seats: list[ReservedSeat]
    amount: int
    expires_at: str = Field(json_schema_extra={"format": "date-time"})
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    payment: PaymentState | None


class Cancelled(BaseModel):
    id: Id
    event_id: Id
    status: Literal["cancelled"]


class PaymentAccepted(BaseModel):
    payment_id: Id
    reservation_id: Id
    status: Literal["pending", "succeeded", "failed", "refunded"]
    failure_reason: str | None


class QueueTicket(BaseModel):
    ticket: str
    position: int | None = Field(description="1-based place; null in the pre-queue or admitted")
    status: Literal["waiting", "admitted", "expired"]
    eta_seconds: int | None
    pre_queue: bool


class QueueStatus(BaseModel):
    status: Literal["waiting", "admitted", "expired"]
    position: int | None
    eta_seconds: int | None
    pre_queue: bool
    admission_token: str | None = Field(
        default=None, description="once admitted: send it as `X-Admission-Token` with a hold"
    )


class QueueLeft(BaseModel):
    status: Literal["left", "gone"]
