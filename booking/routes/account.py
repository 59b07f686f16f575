"""The signed-in buyer's own records: GET /api/users/me and /api/users/me/reservations; a new
bearer token: POST /api/users/me/token."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from booking import api_models
from booking import buyer_models as out
from booking.auth import authenticate
from booking.bookings import list_bookings
from booking.openapi import Operation, operation
from booking.services import services
from booking.users import get_user, rotate_token

_PRIVATE = {"Cache-Control": "private, no-store"}


@operation(Operation("You (bearer token or session cookie)", "users", api_models.User, auth="user"))
async def get_me(request: Request) -> JSONResponse:
    user_id = await authenticate(request)
    return JSONResponse(await get_user(services(request).pool, user_id), headers=_PRIVATE)


@operation(
    Operation(
        "Your reservations, newest first, with booking references",
        "users",
        out.MyBookings,
        auth="user",
    )
)
async def get_my_reservations(request: Request) -> JSONResponse:
    user_id = await authenticate(request)
    bookings = await list_bookings(services(request).pool, user_id)
    return JSONResponse({"reservations": bookings}, headers=_PRIVATE)


@operation(
    Operation(
        "A new bearer token; every earlier one stops working",
        "users",
        api_models.NewToken,
        201,
        auth="user",
    )
)
async def post_my_token(request: Request) -> JSONResponse:
    user_id = await authenticate(request)
    running = services(request)
    token, through = await rotate_token(running.pool, user_id, running.bearer_key)
    # Refused here at once; every other process within AUTH_REVOCATION_SECONDS.
    running.token_revocations.note(user_id, through)
    return JSONResponse({"token": token}, status_code=201, headers=_PRIVATE)


routes = [
    Route("/api/users/me", get_me, methods=["GET"]),
    Route("/api/users/me/reservations", get_my_reservations, methods=["GET"]),
    Route("/api/users/me/token", post_my_token, methods=["POST"]),
]
