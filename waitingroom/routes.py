"""Starlette routes of the waiting room; the booking app mounts them in its factory."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from waitingroom.config import RoomConfig
from waitingroom.errors import PollRateLimited, RoomClosed, UnknownTicket
from waitingroom.ids import parse_id
from waitingroom.problem import problem
from waitingroom.room import WaitingRoom
from waitingroom.view import QueueView

GetConfig = Callable[[str], Awaitable[RoomConfig | None]]
Authenticate = Callable[[Request], Awaitable[str]]

# Queue state changes every second: never let a proxy or browser cache it.
_NO_STORE = {"Cache-Control": "no-store"}


def _event_not_found(event_id: str) -> Response:
    return problem(
        404, "Event not found", f"event {event_id} does not exist", "/problems/event-not-found"
    )


def _unavailable() -> Response:
    return problem(
        503,
        "Waiting room unavailable",
        "the queue store is unreachable; retry shortly",
        "/problems/waiting-room-unavailable",
        headers={"Retry-After": "2"},
    )


def build_routes(
    room: WaitingRoom,
    get_config: GetConfig,
    authenticate: Authenticate,
    view: QueueView | None = None,
) -> list[BaseRoute]:
    """Routes: join, poll and leave the queue (the app that mounts them renders the page).

    `get_config(event_id)` returns None for an unknown event; `authenticate(request)` returns
    the user id or raises HTTPException(401) itself. With a `view`, polls of known tickets
    are answered from process memory (exact as of at most `view.max_age_seconds` ago).
    """
    queue: WaitingRoom | QueueView = room if view is None else view

    async def join(request: Request) -> Response:
        event_id = str(request.path_params["event_id"])
        if parse_id(event_id) is None:  # outside bigint: cannot exist
            return _event_not_found(event_id)
        user_id = await authenticate(request)
        config = await get_config(event_id)
        if config is None:
            return _event_not_found(event_id)
        try:
            ticket = await queue.join(config, user_id)
        except RoomClosed:
            return problem(
                409,
                "Waiting room closed",
                f"the waiting room of event {event_id} is not open",
                "/problems/waiting-room-closed",
            )
        except RedisError:
            return _unavailable()
        body: dict[str, Any] = {
            "ticket": ticket.ticket,
            "position": ticket.position,
            "status": ticket.status,
            "eta_seconds": ticket.eta_seconds,
            "pre_queue": ticket.pre_queue,
        }
        return JSONResponse(body, status_code=201, headers=_NO_STORE)

    async def poll(request: Request) -> Response:
        event_id = str(request.path_params["event_id"])
        if parse_id(event_id) is None:  # outside bigint: cannot exist
            return _event_not_found(event_id)
        ticket = str(request.path_params["ticket"])
        config = await get_config(event_id)
        if config is None:
            return _event_not_found(event_id)
        try:
            result = await queue.poll(config, ticket)
        except UnknownTicket:
            return problem(
                404,
                "Ticket not found",
                "no such ticket for this event (join the queue again)",
                "/problems/ticket-not-found",
            )
        except PollRateLimited as exc:
            retry = max(1, math.ceil(exc.retry_after_ms / 1000))
            return problem(
                429,
                "Too many polls",
                f"poll at most {room.poll_limit_per_second} times per second per ticket",
                "/problems/poll-rate-limited",
                headers={"Retry-After": str(retry)},
            )
        except RedisError:
            return _unavailable()
        body: dict[str, Any] = {
            "status": result.status,
            "position": result.position,
            "eta_seconds": result.eta_seconds,
            "pre_queue": result.pre_queue,
            "paused": config.paused,  # display only: admission reads the room's pause key
        }
        if result.admission_token is not None:
            body["admission_token"] = result.admission_token
        return JSONResponse(body, headers=_NO_STORE)

    async def leave(request: Request) -> Response:
        """The buyer gives up: their place (or active slot) goes to the next in line at once."""
        event_id = str(request.path_params["event_id"])
        if parse_id(event_id) is None:  # outside bigint: cannot exist
            return _event_not_found(event_id)
        ticket = str(request.path_params["ticket"])
        user_id = await authenticate(request)
        config = await get_config(event_id)
        if config is None:
            return _event_not_found(event_id)
        try:
            # Another user's ticket is answered like an unknown one: tickets cannot be probed.
            if await room.ticket_owner(config, ticket) != str(user_id):
                return problem(
                    404,
                    "Ticket not found",
                    "no such ticket of yours for this event",
                    "/problems/ticket-not-found",
                )
            left = await room.leave(config, user_id)
        except RedisError:
            return _unavailable()
        return JSONResponse({"status": "left" if left else "gone"}, headers=_NO_STORE)

    return [
        Route("/api/events/{event_id:int}/queue", join, methods=["POST"], name="wr_join"),
        Route("/api/events/{event_id:int}/queue/{ticket}", poll, methods=["GET"], name="wr_poll"),
        Route(
            "/api/events/{event_id:int}/queue/{ticket}", leave, methods=["DELETE"], name="wr_leave"
        ),
    ]
