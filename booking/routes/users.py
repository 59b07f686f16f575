"""POST /api/users, GET /api/users/{id}."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from booking import api_models as out
from booking.auth import authenticate
from booking.defence import limit_new_accounts
from booking.errors import Problem
from booking.fields import EMAIL_PATTERN, PlainText
from booking.openapi import Operation, operation
from booking.requests import path_id, read_json
from booking.services import services
from booking.users import create_user, get_user


class NewUserBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: PlainText = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320, pattern=EMAIL_PATTERN)


@operation(
    Operation(
        "Create a user (answers its bearer token once)",
        "users",
        out.UserCreated,
        201,
        NewUserBody,
        problems=(409,),
    )
)
async def post_user(request: Request) -> JSONResponse:
    await limit_new_accounts(request)
    body = await read_json(request, NewUserBody)
    name = body.name.strip()
    if not name:
        raise Problem(422, "validation", "name: must not be blank")
    user = await create_user(
        services(request).pool, name, body.email.strip().lower(), services(request).bearer_key
    )
    return JSONResponse(
        {"id": user.id, "name": user.name, "email": user.email, "token": user.token},
        status_code=201,
        headers={"Location": f"/api/users/{user.id}"},
    )


@operation(Operation("Your own user", "users", out.User, auth="user"))
async def get_user_route(request: Request) -> JSONResponse:
    user_id = path_id(request, "user_id")
    me = await authenticate(request)
    if me != user_id:
        raise Problem(404, "not-found", f"no such user: {user_id}")
    return JSONResponse(await get_user(services(request).pool, user_id))


routes = [
    Route("/api/users", post_user, methods=["POST"]),
    Route("/api/users/{user_id:int}", get_user_route, methods=["GET"]),
]
