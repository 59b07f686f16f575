"""Operator API and page: live rooms, the action record, operators' own credentials."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from booking import api_models as out
from booking.errors import Problem
from booking.openapi import Operation, operation
from booking.operators import (
    create_operator,
    list_operators,
    recent_actions,
    require_operator,
    revoke_operator,
)
from booking.requests import read_json
from booking.room_status import rooms_status
from booking.services import services

MAX_ACTIONS = 500
_NO_STORE = {"Cache-Control": "no-store"}


class NewOperatorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")


@operation(Operation("Every waiting room, live", "operators", out.RoomsOverview, auth="admin"))
async def get_rooms(request: Request) -> JSONResponse:
    operator = await require_operator(request)
    rooms = await rooms_status(
        services(request).pool,
        services(request).redis,
        services(request).waiting_room.key_prefix,
    )
    return JSONResponse({"operator": operator, "rooms": rooms}, headers=_NO_STORE)


@operation(
    Operation(
        "The latest operator actions (?limit=1..500)",
        "operators",
        out.OperatorActions,
        auth="admin",
        problems=(422,),
    )
)
async def get_actions(request: Request) -> JSONResponse:
    await require_operator(request)
    raw = request.query_params.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_ACTIONS:
        raise Problem(422, "validation", f"limit must be an integer in 1..{MAX_ACTIONS}")
    actions = await recent_actions(services(request).pool, int(raw))
    return JSONResponse({"actions": actions}, headers=_NO_STORE)


@operation(
    Operation(
        "Create an operator with a token of their own",
        "operators",
        out.OperatorCreated,
        201,
        NewOperatorBody,
        "admin",
        (409,),
    )
)
async def post_operator(request: Request) -> JSONResponse:
    operator = await require_operator(request)
    body = await read_json(request, NewOperatorBody)
    created = await create_operator(services(request).pool, body.name, operator)
    return JSONResponse(created, status_code=201, headers=_NO_STORE)


@operation(Operation("The operators", "operators", out.Operators, auth="admin"))
async def get_operators(request: Request) -> JSONResponse:
    await require_operator(request)
    return JSONResponse({"operators": await list_operators(services(request).pool)})


@operation(
    Operation("Revoke an operator's token", "operators", None, 204, auth="admin", problems=(404,))
)
async def delete_operator(request: Request) -> Response:
    operator = await require_operator(request)
    await revoke_operator(services(request).pool, str(request.path_params["name"]), operator)
    return Response(status_code=204)


@operation(Operation("Operator page (HTML)", "pages", "text/html", backed=False))
async def admin_page(request: Request) -> Response:
    # A static shell: the page signs in with a token kept in sessionStorage and calls the API.
    templates: Jinja2Templates = services(request).templates
    return templates.TemplateResponse(request, "admin.html", {}, headers=_NO_STORE)


routes: list[BaseRoute] = [
    Route("/admin", admin_page, methods=["GET"], name="admin_page"),
    Route("/api/admin/rooms", get_rooms, methods=["GET"]),
    Route("/api/admin/actions", get_actions, methods=["GET"]),
    Route("/api/admin/operators", post_operator, methods=["POST"]),
    Route("/api/admin/operators", get_operators, methods=["GET"]),
    Route("/api/admin/operators/{name}", delete_operator, methods=["DELETE"]),
]
