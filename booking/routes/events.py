"""Events, seat map and holds."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from booking import api_models as out
from booking import metrics
from booking.admission import require_admission
from booking.auth import authenticate
from booking.domain_errors import NotOnSale, SeatsUnavailable
from booking.errors import Problem
from booking.events import get_event, list_events
from booking.holds import create_hold
from booking.openapi import Header, Operation, operation
from booking.requests import PG_BIGINT_MAX, path_id, read_json
from booking.room_cache import RoomCache
from booking.seatmap import read_seat_map
from booking.services import services
from booking.side_effects import after_hold_committed
from booking.statuses import EventStatus


@operation(Operation("List events with seat counts", "events", list[out.Event]))
async def get_events(request: Request) -> JSONResponse:
    return JSONResponse(await list_events(services(request).pool))


@operation(Operation("One event", "events", out.Event))
async def get_event_route(request: Request) -> JSONResponse:
    return JSONResponse(await get_event(services(request).pool, path_id(request, "event_id")))


@operation(Operation("The event's seat map (cached; see X-Cache, Age)", "events", list[out.Seat]))
async def get_seats(request: Request) -> Response:
    event_id = path_id(request, "event_id")
    settings = services(request).settings
    cached = await read_seat_map(
        services(request).seat_cache, services(request).pool, event_id, settings.seat_query_delay_ms
    )
    return Response(
        cached.value,
        media_type="application/json",
        headers={
            "X-Cache": cached.source,
            "Age": str(int(cached.age_seconds)),
            "X-Cache-Age-Ms": str(int(cached.age_seconds * 1000)),
        },
    )


class HoldBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seat_ids: list[int] = Field(min_length=1)


@operation(
    Operation(
        "Hold seats for HOLD_SECONDS",
        "reservations",
        out.Hold,
        201,
        HoldBody,
        auth="user",
        problems=(403, 409),
        headers=(Header("X-Admission-Token", "the waiting room's admission (when it is on)"),),
    )
)
async def post_hold(request: Request) -> JSONResponse:
    event_id = path_id(request, "event_id")
    settings = services(request).settings
    user_id = await authenticate(request)
    body = await read_json(request, HoldBody)
    if len(body.seat_ids) > settings.max_seats_per_hold:
        raise Problem(
            422, "too-many-seats", f"at most {settings.max_seats_per_hold} seats per hold"
        )
    if len(set(body.seat_ids)) != len(body.seat_ids):
        raise Problem(422, "duplicate-seats", "seat_ids contains duplicates")
    if any(s < 1 or s > PG_BIGINT_MAX for s in body.seat_ids):
        raise Problem(422, "validation", "seat_ids must be positive 64-bit integers")
    rooms: RoomCache = services(request).room_cache
    sale = await rooms.require(event_id)  # at most ROOM_CACHE_SECONDS old
    if sale.status != EventStatus.ON_SALE:
        raise NotOnSale(event_id, sale.status)
    await require_admission(request, user_id, sale.room)
    try:
        hold = await create_hold(services(request).holds, user_id, event_id, body.seat_ids)
    except SeatsUnavailable:
        metrics.HOLD_CONFLICTS.inc()
        raise
    metrics.HOLDS_CREATED.inc()
    # Committed: from here on the client gets its 201 whatever Redis does.
    after_hold_committed(services(request), hold)
    return JSONResponse(
        {
            "reservation_id": hold.reservation_id,
            "event_id": event_id,
            "seat_ids": hold.seat_ids,
            "amount": hold.amount_cents,
            "expires_at": hold.expires_at.isoformat(),
        },
        status_code=201,
        headers={"Location": f"/api/reservations/{hold.reservation_id}"},
    )


routes = [
    Route("/api/events", get_events, methods=["GET"]),
    Route("/api/events/{event_id:int}", get_event_route, methods=["GET"]),
    Route("/api/events/{event_id:int}/seats", get_seats, methods=["GET"]),
    Route("/api/events/{event_id:int}/holds", post_hold, methods=["POST"]),
]
