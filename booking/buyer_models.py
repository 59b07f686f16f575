"""The JSON of the buyer-facing routes (sessions, my bookings, the line's status), as pydantic
models for the OpenAPI schema (booking/openapi.py) and the schema-driven fuzz test."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from booking.api_models import SeatCounts


class SessionUser(BaseModel):
    id: int
    name: str
    email: str


class Session(BaseModel):
    user: SessionUser | None = Field(description="who this browser is signed in as, or null")


class SignedUp(BaseModel):
    user: SessionUser
    token: str = Field(description="bearer token for API use, shown once (the page needs none)")


class CodeSent(BaseModel):
    email: str
    expires_in: int = Field(description="seconds the code works")
    dev_code: str | None = Field(
        default=None,
        description="development only (SIGNIN_CODE_ECHO=1): the code, as no mail is sent; "
        "null when no account has this email",
    )


class BookingSeat(BaseModel):
    id: int
    section: str
    row: str
    number: int


class BookingEvent(BaseModel):
    id: int
    name: str
    venue: str
    starts_at: str = Field(json_schema_extra={"format": "date-time"})


class BookingLinks(BaseModel):
    self: str
    page: str
    event: str


class Booking(BaseModel):
    id: int
    reference: str = Field(pattern=r"^[2-9A-HJKMNP-Z]{8}$", description="booking reference")
    status: Literal["held", "paid", "expired", "cancelled"]
    payment_status: Literal["pending", "succeeded", "failed", "refunded"] | None
    amount: int = Field(description="cents")
    expires_at: str = Field(json_schema_extra={"format": "date-time"})
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    event: BookingEvent
    seats: list[BookingSeat]
    links: BookingLinks


class MyBookings(BaseModel):
    reservations: list[Booking] = Field(description="newest first, at most 200")


class LineEvent(BaseModel):
    id: int
    name: str
    venue: str
    starts_at: str
    status: Literal["scheduled", "on_sale", "closed"]
    sale_opens_at: str | None


class Line(BaseModel):
    active: int = Field(description="buyers admitted and still choosing seats")
    max_active: int
    waiting: int = Field(description="in the queue or the pre-queue")
    full: bool = Field(description="max_active reached: the line cannot move, no estimate")
    admit_per_second: int
    admission_window_seconds: int


class LineStatus(BaseModel):
    event: LineEvent
    state: Literal["on_sale", "scheduled", "closed", "sold_out", "no_line"]
    line: Line
    seats: SeatCounts
    updated_at: float = Field(description="epoch seconds this status was computed")


class MyPlace(BaseModel):
    ticket: str | None = Field(description="your ticket in this event's line, if you joined")
    admitted: bool = Field(description="your admission is active: poll the ticket for a token")
    admission_ends_at: float | None = Field(
        description="epoch seconds your admission window ends (each token lives shorter)"
    )
