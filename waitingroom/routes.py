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
from waitingroom.defence import JoinDefence
from waitingroom.errors import JoinRefused, PollRateLimited, RoomClosed, UnknownTicket
from waitingroom.ids import parse_id
from waitingroom.problem import problem
from waitingroom.room import WaitingRoom
from waitingroom.view import QueueView

GetConfig = Callable[[str], Awaitable[RoomConfig | None]]
Authenticate = Callable[[Request], Awaitable[str]]

# Queue state changes every second: never let a proxy or browser cache it.
_NO_STORE = {"Cache-Control": "no-store"}


# The waiting room's two common answers, shared with the gate (waitingroom/gate.py) and the
# token routes: one title per problem type.
def event_not_found(event_id: str) -> Response:
    return problem(404, "Event not found", f"event {event_id} does not exist", "event-not-found")


def waiting_room_unavailable(detail: str) -> Response:
    """503 while the room's Redis is unreachable: nothing was written, a retry is safe."""
    return problem(
        503,
        "Waiting room unavailable",
        detail,
        "waiting-room-unavailable",
        headers={"Retry-After": "2"},
    )


def _unavailable() -> Response:
    return waiting_room_unavailable("the queue store is unreachable; retry shortly")


def build_routes(
    room: WaitingRoom,
    get_config: GetConfig,
    authenticate: Authenticate,
    defence: JoinDefence | None = None,
    view: QueueView | None = None,
) -> list[BaseRoute]:
    """Routes: join, poll and leave the queue (the app that mounts them renders the page).

    `get_config(event_id)` returns None for an unknown event; `authenticate(request)` returns
    the user id or raises an exception the mounting app's handlers answer with 401 (the booking
    app's raises its Problem; these routes do not catch it). With a `view`, polls of known
    tickets are answered from process memory (exact as of at most `view.max_age_seconds` ago).
    """
    queue: WaitingRoom | QueueView = room if view is None else view

    async def join(request: Request) -> Response:
        event_id = str(request.path_params["event_id"])
        if parse_id(event_id) is None:  # outside bigint: cannot exist
            return event_not_found(event_id)
        user_id = await authenticate(request)
        config = await get_config(event_id)
        if config is None:
            return event_not_found(event_id)
        # Bot defence: the PoW solution is checked here (CPU only); the per-address join limit
        # and the solution's single use are checked by the join script itself.
        guard = None if defence is None else defence.prepare_join(request, config)
        if isinstance(guard, Response):
            return guard
        try:
            ticket = await queue.join(config, user_id, guard)
        except JoinRefused as refused:
            assert defence is not None  # only a guard refuses
            return defence.refused(config, refused.outcome, refused.retry_after_ms)
        except RoomClosed:
            return problem(
                409,
                "Waiting room closed",
                f"the waiting room of event {event_id} is not open",
                "waiting-room-closed",
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
            return event_not_found(event_id)
        ticket = str(request.path_params["ticket"])
        config = await get_config(event_id)
        if config is None:
            return event_not_found(event_id)
        try:
            result = await queue.poll(config, ticket)
        except UnknownTicket:
            # Bot defence: an address probing unknown tickets is slowed down.
            refusal = None if defence is None else await defence.check_unknown_poll(request, config)
            if refusal is not None:
                return refusal
            return problem(
                404,
                "Ticket not found",
                "no such ticket for this event (join the queue again)",
                "ticket-not-found",
            )
        except PollRateLimited as exc:
            retry = max(1, math.ceil(exc.retry_after_ms / 1000))
            return problem(
                429,
                "Too many polls",
                f"poll at most {room.poll_limit_per_second} times per second per ticket",
                "poll-rate-limited",
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
            return event_not_found(event_id)
        ticket = str(request.path_params["ticket"])
        user_id = await authenticate(request)
        config = await get_config(event_id)
        if config is None:
            return event_not_found(event_id)
        try:
            # Another user's ticket is answered like an unknown one: tickets cannot be probed.
            if await room.ticket_owner(config, ticket) != str(user_id):
                return problem(
                    404,
                    "Ticket not found",
                    "no such ticket of yours for this event",
                    "ticket-not-found",
                )
            left = await room.leave(config, user_id)
        except RedisError:
            return _unavailable()
        return JSONResponse({"status": "left" if left else "gone"}, headers=_NO_STORE)

    async def challenge(request: Request) -> Response:
        """A fresh proof-of-work challenge for joining this event's queue (waitingroom/pow.py)."""
        event_id = str(request.path_params["event_id"])
        # Outside bigint: cannot exist.
        config = None if parse_id(event_id) is None else await get_config(event_id)
        if config is None:
            return event_not_found(event_id)
        body: dict[str, Any] = {
            "algorithm": "none",
            "difficulty": 0,
            "challenge": None,
            "expires": None,
        }
        if defence is not None:
            body = defence.challenge_body(config)
        return JSONResponse(body, headers=_NO_STORE)

    return [
        Route(
            "/api/events/{event_id:int}/challenge", challenge, methods=["GET"], name="wr_challenge"
        ),
        Route("/api/events/{event_id:int}/queue", join, methods=["POST"], name="wr_join"),
        Route("/api/events/{event_id:int}/queue/{ticket}", poll, methods=["GET"], name="wr_poll"),
        Route(
            "/api/events/{event_id:int}/queue/{ticket}", leave, methods=["DELETE"], name="wr_leave"
        ),
    ]
