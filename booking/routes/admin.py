"""Admin endpoints (bearer: an operator's token or the bootstrap ADMIN_TOKEN): create events
with seats, open or close a sale, set the buyer seat cap, edit or pause the waiting room
(including its proof-of-work difficulty). Every change is recorded (booking/operators.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from booking import api_models as out
from booking.errors import Problem
from booking.events import SeatBlock, create_event, get_event, set_buyer_cap, set_event_status
from booking.fields import Instant, PlainText
from booking.openapi import Operation, operation
from booking.operators import record, require_operator
from booking.requests import path_id, read_json
from booking.room_cache import publish_change
from booking.rooms import room_settings, set_paused, update_room
from booking.services import services
from booking.statuses import EventStatus
from waitingroom.pow import MAX_DIFFICULTY

MAX_SEATS_PER_EVENT = 200_000


class SeatBlockBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    section: PlainText = Field(min_length=1, max_length=50)
    rows: int = Field(ge=1, le=500)
    seats_per_row: int = Field(ge=1, le=500)
    price: int = Field(ge=0, le=100_000_000)


class NewEventBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: PlainText = Field(min_length=1, max_length=200)
    venue: PlainText = Field(default="", max_length=200)
    starts_at: Instant
    seats: list[SeatBlockBody] = Field(min_length=1, max_length=100)
    waiting_room_enabled: bool = False
    # Bot defence: omitted → POW_DIFFICULTY / the server's MAX_SEATS_PER_BUYER.
    pow_difficulty: int | None = Field(default=None, ge=0, le=MAX_DIFFICULTY)
    max_seats_per_buyer: int | None = Field(default=None, ge=0, le=100_000)

    @model_validator(mode="after")
    def _distinct_sections(self) -> NewEventBody:
        sections = [block.section for block in self.seats]
        if len(set(sections)) != len(sections):
            raise ValueError("seats: each block needs its own section name")
        return self


class EventStatusBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["scheduled", "on_sale", "closed"] | None = None
    # null clears the event's own cap (the server's MAX_SEATS_PER_BUYER applies); 0 = no cap.
    max_seats_per_buyer: int | None = Field(default=None, ge=0, le=100_000)


class RoomBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = None
    admit_per_second: int | None = Field(default=None, ge=1, le=100_000)
    max_active: int | None = Field(default=None, ge=1, le=1_000_000)
    admission_window_seconds: int | None = Field(default=None, ge=1, le=86_400)
    sale_opens_at: Instant | None = None
    paused: bool | None = None
    pow_difficulty: int | None = Field(default=None, ge=0, le=MAX_DIFFICULTY)


@operation(
    Operation(
        "Create an event with its seats", "admin", out.Event, 201, NewEventBody, "admin", (409,)
    )
)
async def post_event(request: Request) -> JSONResponse:
    operator = await require_operator(request)
    body = await read_json(request, NewEventBody)
    total = sum(b.rows * b.seats_per_row for b in body.seats)
    if total > MAX_SEATS_PER_EVENT:
        raise Problem(422, "too-many-seats", f"at most {MAX_SEATS_PER_EVENT} seats per event")
    blocks = [SeatBlock(b.section, b.rows, b.seats_per_row, b.price) for b in body.seats]
    event_id = await create_event(
        services(request).pool,
        body.name,
        body.starts_at,
        blocks,
        body.venue,
        body.waiting_room_enabled,
        pow_difficulty=(
            services(request).settings.pow_difficulty
            if body.pow_difficulty is None
            else body.pow_difficulty
        ),
        max_seats_per_buyer=body.max_seats_per_buyer,
    )
    created = await get_event(services(request).pool, event_id)
    await record(services(request).pool, operator, "event.create", event_id, None, created)
    return JSONResponse(created, status_code=201)


@operation(
    Operation("Configure the event's waiting room", "admin", out.Event, body=RoomBody, auth="admin")
)
async def patch_room(request: Request) -> JSONResponse:
    operator = await require_operator(request)
    event_id = path_id(request, "event_id")
    body = await read_json(request, RoomBody)
    # An explicit null clears the opening time; an absent field leaves it as it is.
    clear = "sale_opens_at" in body.model_fields_set and body.sale_opens_at is None
    pool = services(request).pool
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT 1 FROM events WHERE id = $1 FOR UPDATE", event_id)
        before = await room_settings(conn, event_id)
        await update_room(
            conn,
            event_id,
            body.enabled,
            body.admit_per_second,
            body.max_active,
            body.admission_window_seconds,
            body.sale_opens_at,
            clear,
            body.pow_difficulty,
        )
        if body.paused is not None:
            await set_paused(conn, event_id, body.paused)
            # Before the commit: if Redis fails, the database change is rolled back too.
            await services(request).waiting_room.set_paused(str(event_id), body.paused)
        after = await room_settings(conn, event_id)
        if before != after:
            action = "room.update"
            if body.paused is not None and before["paused"] != after["paused"]:
                action = "room.pause" if body.paused else "room.resume"
            await record(conn, operator, action, event_id, before, after)
    await publish_change(services(request).redis, services(request).room_cache, event_id)
    return JSONResponse(await get_event(pool, event_id))


@operation(
    Operation(
        "Open or close a sale, set the buyer seat cap",
        "admin",
        out.Event,
        body=EventStatusBody,
        auth="admin",
    )
)
async def patch_event(request: Request) -> JSONResponse:
    """Open or close a sale, and/or set the event's buyer seat cap. Closing also clears the
    event's waiting room in Redis: nobody more is admitted, admission tokens stop verifying and
    the queue's keys are freed."""
    operator = await require_operator(request)
    event_id = path_id(request, "event_id")
    body = await read_json(request, EventStatusBody)
    if not body.model_fields_set - {"status"} and body.status is None:
        raise Problem(422, "validation", "send status and/or max_seats_per_buyer")
    pool = services(request).pool
    async with pool.acquire() as conn, conn.transaction():
        before = await room_settings(conn, event_id)
        if body.status is not None:
            await set_event_status(conn, event_id, EventStatus(body.status))
        if "max_seats_per_buyer" in body.model_fields_set:
            # An explicit null clears the event's own cap: the server default applies again.
            await set_buyer_cap(conn, event_id, body.max_seats_per_buyer)
        after = await room_settings(conn, event_id)
        if before != after:
            action = "event.status" if before["status"] != after["status"] else "event.seat_cap"
            await record(conn, operator, action, event_id, before, after)
    await publish_change(services(request).redis, services(request).room_cache, event_id)
    if body.status == EventStatus.CLOSED.value:
        await services(request).waiting_room.reset(str(event_id))
    return JSONResponse(await get_event(services(request).pool, event_id))


routes = [
    Route("/api/admin/events", post_event, methods=["POST"]),
    Route("/api/admin/events/{event_id:int}", patch_event, methods=["PATCH"]),
    Route("/api/admin/events/{event_id:int}/waiting-room", patch_room, methods=["PATCH"]),
]
