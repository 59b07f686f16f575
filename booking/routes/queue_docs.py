"""OpenAPI documentation of the waiting room's routes. The `waitingroom` package knows nothing of
booking or pydantic, so the app documents the routes it mounts from it, by route name."""

from __future__ import annotations

from collections.abc import Iterable

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
        out.PowChallenge,
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
    "wr_jwks": Operation(
        "Public keys that sign admission tokens (JWKS)", "admission", out.Jwks, backed=False
    ),
    "wr_verify": Operation(
        "Verify an admission token: its claims, or why it is rejected (`reason`)",
        "admission",
        out.AdmissionClaims,
        body=out.VerifyBody,
        problems=(401, 403),  # 401: forged or expired; 403: revoked or another event
    ),
    "gate_check": Operation(
        "The nginx gate's auth_request check: 204 passes, 401 sends to the queue",
        "gate",
        None,
        204,
        other={401: None},
    ),
    "gate_join": Operation(
        "Join a gated site's queue as an anonymous visitor (sets its cookies)",
        "gate",
        out.GateQueueStatus,
        201,
        problems=(409,),
    ),
    "gate_poll": Operation(
        "A gated site's visitor's place; sets the admission cookie once admitted",
        "gate",
        out.GateQueueStatus,
    ),
    "gate_waiting": Operation(
        "A gated site's waiting page (HTML)", "gate", "text/html", other={404: "text/html"}
    ),
}


def document_waiting_room(routes: Iterable[BaseRoute]) -> None:
    for route in routes:
        if isinstance(route, Route) and route.name in WAITING_ROOM_OPERATIONS:
            document(route.endpoint, WAITING_ROOM_OPERATIONS[route.name])
