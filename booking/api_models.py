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


class NewToken(BaseModel):
    token: str = Field(
        description="your new bearer token, shown once; every earlier one is revoked"
    )


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
    paused: bool = Field(default=False, description="an operator paused admissions")
    pow_difficulty: int = Field(
        default=0, description="leading zero bits a join's proof of work needs; 0 = none"
    )


class PowChallenge(BaseModel):
    """A proof-of-work challenge (docs/bot-defence.md): find a decimal nonce such that SHA-256 of
    `<challenge>:<nonce>` starts with `difficulty` zero bits; send both with the join."""

    algorithm: str
    difficulty: int
    challenge: str | None = Field(description="null when the event asks for no proof of work")
    expires: int | None = Field(description="epoch milliseconds")


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
    max_seats_per_buyer: int | None = Field(
        default=None,
        description="seats one buyer may hold or own; null = the server's MAX_SEATS_PER_BUYER,"
        " 0 = no cap",
    )
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
    paused: bool = Field(default=False, description="an operator paused admissions for now")


class QueueLeft(BaseModel):
    status: Literal["left", "gone"]


# --- admission token API, gate and operators (docs/admission.md) ---------------------------


class Jwk(BaseModel):
    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    alg: Literal["EdDSA"]
    use: Literal["sig"]
    kid: str
    x: str = Field(description="the public key, base64url")


class Jwks(BaseModel):
    keys: list[Jwk]


class VerifyBody(BaseModel):
    token: str = Field(min_length=1, max_length=4096)
    event: Id | None = Field(default=None, description="require a token for this event")


class AdmissionClaims(BaseModel):
    valid: Literal[True]
    user: str
    event: str
    ticket: str
    expires_at: int = Field(description="epoch seconds")
    kid: str


class GateQueueStatus(BaseModel):
    status: Literal["waiting", "admitted", "expired"]
    position: int | None
    eta_seconds: int | None
    pre_queue: bool
    paused: bool


class RoomStatus(BaseModel):
    event_id: Id
    name: str
    status: Literal["scheduled", "on_sale", "closed"]
    paused: bool
    paused_recorded: bool
    admit_per_second: int
    max_active: int
    admission_window_seconds: int
    waiting: int
    active: int
    admitted_per_second: float
    last_in_line_eta_seconds: int | None


class RoomsOverview(BaseModel):
    operator: str
    rooms: list[RoomStatus]


class OperatorAction(BaseModel):
    id: Id
    operator: str
    at: str = Field(json_schema_extra={"format": "date-time"})
    action: str
    event_id: Id | None
    before: dict[str, object] | None
    after: dict[str, object] | None


class OperatorActions(BaseModel):
    actions: list[OperatorAction]


class OperatorCreated(BaseModel):
    id: Id
    name: str
    token: str = Field(description="the operator's bearer token, shown once")


class OperatorInfo(BaseModel):
    name: str
    created_by: str
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    revoked: bool


class Operators(BaseModel):
    operators: list[OperatorInfo]
