"""Virtual waiting room: a Redis-backed FIFO queue per event with timed admission.

Depends only on Redis, its own config and starlette/jinja2/prometheus-client/pyjwt;
never on `booking`.
"""

from waitingroom.admission import run_admitter
from waitingroom.config import RoomConfig
from waitingroom.errors import (
    PollRateLimited,
    RoomClosed,
    TokenRejected,
    UnknownTicket,
    WaitingRoomError,
)
from waitingroom.models import PollResult, Ticket
from waitingroom.room import WaitingRoom
from waitingroom.routes import build_routes

__all__ = [
    "PollRateLimited",
    "PollResult",
    "RoomClosed",
    "RoomConfig",
    "Ticket",
    "TokenRejected",
    "UnknownTicket",
    "WaitingRoom",
    "WaitingRoomError",
    "build_routes",
    "run_admitter",
]
