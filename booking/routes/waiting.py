"""The waiting page and the line's status, both for buyers.

The page is rendered with everything known on the server: the event, the line, and (for a
signed-in buyer who already joined) their own place, so that without JavaScript it still shows
the place in line and refreshes itself. With JavaScript it updates in place from the queue API
and from GET /api/events/{id}/waiting-room.
"""

from __future__ import annotations

import time
from typing import Any

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from booking import buyer_models as out
from booking.auth import authenticate
from booking.domain_errors import EventNotFound
from booking.linestatus import LineStatus, LineStatusCache
from booking.openapi import Operation, operation
from booking.requests import path_id
from booking.rooms import room_config
from booking.routes.pages import render, viewer
from booking.services import services
from booking.statuses import LineState
from waitingroom import PollRateLimited, UnknownTicket, WaitingRoom
from waitingroom.ids import parse_id

_NO_STORE = {"Cache-Control": "no-store"}


def _line_cache(request: Request) -> LineStatusCache:
    return services(request).line_status


@operation(
    Operation(
        "The line: the sale's state, how many choose seats and wait", "waiting room", out.LineStatus
    )
)
async def line_status(request: Request) -> JSONResponse:
    status = await _line_cache(request).get(path_id(request, "event_id"))
    return JSONResponse(status.as_json(), headers={"Cache-Control": "public, max-age=1"})


@operation(
    Operation(
        "Your own place in this event's line: ticket, status, when your admission ends",
        "waiting room",
        out.MyPlace,
        auth="user",
    )
)
async def my_place(request: Request) -> JSONResponse:
    """Lets every tab (and device) of a buyer find their ticket, renew the short-lived admission
    token from it, and count down the admission window itself, which outlives each token."""
    event_id = path_id(request, "event_id")
    user_id = await authenticate(request)
    room: WaitingRoom = services(request).waiting_room
    keys = room.keys_for(event_id)
    async with room.redis.pipeline(transaction=False) as pipe:
        pipe.hget(keys.users, str(user_id))
        pipe.zscore(keys.active, str(user_id))
        raw_ticket, expiry_ms = await pipe.execute()
    ticket = raw_ticket.decode() if isinstance(raw_ticket, bytes) else raw_ticket
    now_ms = time.time() * 1000
    admitted = expiry_ms is not None and float(expiry_ms) > now_ms
    body = {
        "ticket": ticket,
        "admitted": admitted,
        "admission_ends_at": float(expiry_ms) / 1000 if admitted else None,
    }
    return JSONResponse(body, headers={"Cache-Control": "private, no-store"})


async def _own_place(request: Request, event_id: int, user_id: int) -> dict[str, Any] | None:
    """The buyer's ticket and its state, if they joined this event's line (None otherwise)."""
    room: WaitingRoom = services(request).waiting_room
    config = await room_config(services(request).pool, event_id)
    if config is None or not config.enabled:
        return None
    raw = await room.redis.hget(room.keys_for(event_id).users, str(user_id))
    if raw is None:
        return None
    ticket = raw.decode() if isinstance(raw, bytes) else str(raw)
    try:
        result = await room.poll(config, ticket)
    except UnknownTicket:
        return None
    except PollRateLimited:
        return {"ticket": ticket, "status": "unknown"}
    place: dict[str, Any] = {
        "ticket": ticket,
        "status": result.status,
        "position": result.position,
        "eta_seconds": result.eta_seconds,
        "pre_queue": result.pre_queue,
    }
    if result.admission_token is not None:
        place["admission_token"] = result.admission_token
        # Our own token, just issued: read its expiry for the page (the script counts it down).
        ends = await room.redis.zscore(room.keys_for(event_id).active, str(user_id))
        place["pass_seconds_left"] = max(0, int(float(ends or 0) / 1000 - time.time()))
    return place


@operation(Operation("Waiting-room page (HTML)", "pages", "text/html", other={404: "text/html"}))
async def waiting_page(request: Request) -> Response:
    event_id = parse_id(request.path_params["event_id"]) or 0
    status: LineStatus | None = None
    if event_id:
        try:
            status = await _line_cache(request).get(event_id)
        except EventNotFound:
            status = None  # the page says so, with a 404
    if status is None:
        return render(
            request,
            "waiting_room.html",
            {"event_id": event_id, "state": "unknown", "line": None, "place": None},
            status_code=404,
            headers=_NO_STORE,
        )
    me = viewer(request)
    place = None
    if me is not None and status.state in (LineState.ON_SALE, LineState.SCHEDULED):
        try:
            place = await _own_place(request, event_id, int(me["id"]))
        except RedisError:
            place = None  # the page still renders; the script retries
    # Without JavaScript the page reloads itself (WAITING_PAGE_REFRESH_SECONDS); not once admitted.
    every: int = services(request).settings.waiting_page_refresh_seconds
    refresh = None if place and place["status"] == "admitted" else every
    return render(
        request,
        "waiting_room.html",
        {
            "event_id": event_id,
            "state": status.state,
            "line": status.as_json(),
            "place": place,
            "refresh_seconds": refresh,
            "updated_text": time.strftime("%H:%M:%S UTC", time.gmtime()),
        },
        headers=_NO_STORE,
    )


routes: list[BaseRoute] = [
    Route("/events/{event_id:int}/waiting-room", waiting_page, methods=["GET"], name="wr_page"),
    Route("/api/events/{event_id:int}/waiting-room", line_status, methods=["GET"]),
    Route("/api/events/{event_id:int}/waiting-room/me", my_place, methods=["GET"]),
]
