"""OpenAPI documentation of the waiting room's routes. The `waitingroom` package knows nothing of
booking or pydantic, so the app documents the routes it mounts from it, by route name."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.routing import BaseRoute, Route

from booking import api_models as out
from booking.openapi import Operation, document

WAITING_ROOM_OPERATIONS = {
    "wr_join": Operation(
        "Join the event's waiting room (idempotent per user)",
        "waiting room",
        out.QueueTicket,
        201,
        auth="user",
        problems=(403, 409),  # 403: the proof of work is missing or wrong (bot defence)
    ),
    "wr_challenge": Operation(
        "A fresh proof-of-work challenge for joining the queue",
        "waiting room",
        dict[str, Any],
    ),
    "wr_poll": Operation(
        "Your place in the queue; the admission token once admitted",
        "waiting room",
        out.QueueStatus,
    ),
    "wr_leave": Operation(
        "Leave the queue (your place goes to the next in line)",
        "waiting room",
        out.QueueLeft,
        auth="user",
    ),
    "wr_page": Operation(
        "Waiting-room page (HTML)", "pages", "text/html", other={404: "text/html"}
    ),
}


def document_waiting_room(routes: Iterable[BaseRoute]) -> None:
    for route in routes:
        if isinstance(route, Route) and route.name in WAITING_ROOM_OPERATIONS:
            document(route.endpoint, WAITING_ROOM_OPERATIONS[route.name])
