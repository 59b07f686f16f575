"""Browser sign-in: sign up, a one-time email code, the session cookie, sign-out.

API clients keep using bearer tokens (POST /api/users); these routes serve the pages.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from booking import buyer_models as out
from booking.auth import same_origin, unknown_token
from booking.bearer_tokens import hash_token
from booking.defence import limit_new_accounts
from booking.errors import Problem
from booking.openapi import Operation, operation
from booking.requests import read_json
from booking.services import services
from booking.sessions import end_session, session_user_id, start_session
from booking.signin import request_code, verify_code
from booking.users import create_user

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class CodeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=320, pattern=EMAIL_PATTERN)


class SignInBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(default=None, min_length=3, max_length=320, pattern=EMAIL_PATTERN)
    code: str | None = Field(default=None, pattern=r"^\s*\d{6}\s*$")
    token: str | None = Field(default=None, min_length=1, max_length=200)


class SignUpBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320, pattern=EMAIL_PATTERN)


def _check_origin(request: Request) -> None:
    # No signing a victim into someone else's account from another site (login CSRF).
    if not same_origin(request):
        raise Problem(403, "cross-origin", "sign-in is accepted from this site only")


def _user_json(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "email": row["email"]}


@operation(
    Operation(
        "Email a one-time sign-in code (development: answered as dev_code)",
        "sessions",
        out.CodeSent,
        202,
        CodeBody,
        problems=(403,),
    )
)
async def post_code(request: Request) -> JSONResponse:
    _check_origin(request)
    body = await read_json(request, CodeBody)
    settings = services(request).settings
    sent = await request_code(
        services(request).redis,
        services(request).pool,
        body.email.strip().lower(),
        settings.signin_code_ttl_seconds,
        settings.signin_code_echo,
    )
    answer: dict[str, Any] = {"email": sent.email, "expires_in": settings.signin_code_ttl_seconds}
    if settings.signin_code_echo:
        # Development only: no mail leaves this machine, so the page shows the code.
        answer["dev_code"] = sent.code
    return JSONResponse(answer, status_code=202)


@operation(
    Operation(
        "Sign in: {email, code} or {token}; sets the session cookie",
        "sessions",
        out.Session,
        body=SignInBody,
        problems=(401, 403),
    )
)
async def post_session(request: Request) -> JSONResponse:
    _check_origin(request)
    body = await read_json(request, SignInBody)
    pool = services(request).pool
    if body.token is not None and body.email is None and body.code is None:
        # A bearer token from the API (or an older version of these pages) becomes a session.
        row = await pool.fetchrow(
            "SELECT id, name, email FROM users WHERE token_hash = $1", hash_token(body.token)
        )
        if row is None:
            raise unknown_token()
    elif body.email is not None and body.code is not None and body.token is None:
        email = body.email.strip().lower()
        user_id = await verify_code(services(request).redis, email, body.code.strip())
        row = await pool.fetchrow("SELECT id, name, email FROM users WHERE id = $1", user_id)
        if row is None:
            raise Problem(401, "code-expired", "no valid code for this email: ask for a new one")
    else:
        raise Problem(422, "validation", "send either {email, code} or {token}")
    response = JSONResponse({"user": _user_json(row)})
    await start_session(request, response, row["id"], row["name"])
    return response


@operation(
    Operation(
        "Create an account and sign this browser in (sets the session cookie)",
        "sessions",
        out.SignedUp,
        201,
        SignUpBody,
        problems=(403, 409),
    )
)
async def post_signup(request: Request) -> JSONResponse:
    _check_origin(request)
    await limit_new_accounts(request)  # the same per-address limit as POST /api/users
    body = await read_json(request, SignUpBody)
    name = body.name.strip()
    if not name:
        raise Problem(422, "validation", "name: must not be blank")
    user = await create_user(
        services(request).pool, name, body.email.strip().lower(), services(request).bearer_key
    )
    response = JSONResponse(
        {"user": {"id": user.id, "name": user.name, "email": user.email}, "token": user.token},
        status_code=201,
    )
    await start_session(request, response, user.id, user.name)
    return response


@operation(Operation("Who this browser is signed in as", "sessions", out.Session))
async def get_session(request: Request) -> JSONResponse:
    """Who this browser is signed in as ({"user": null} when nobody): never a 401."""
    user: dict[str, Any] | None = None
    user_id = await session_user_id(request)
    if user_id is not None:
        row = await services(request).pool.fetchrow(
            "SELECT id, name, email FROM users WHERE id = $1", user_id
        )
        user = None if row is None else _user_json(row)
    return JSONResponse({"user": user}, headers={"Cache-Control": "no-store"})


@operation(
    Operation(
        "Sign out: end the session and clear its cookie", "sessions", out.Session, problems=(403,)
    )
)
async def delete_session(request: Request) -> Response:
    _check_origin(request)
    response = JSONResponse({"user": None})
    await end_session(request, response)
    return response


@operation(
    Operation(
        "Sign out from the page header (a form; redirects home)",
        "pages",
        "text/html",
        303,
        problems=(403,),
    )
)
async def post_signout_form(request: Request) -> Response:
    """The header's sign-out button without JavaScript: end the session, back to the start."""
    _check_origin(request)
    response = HTMLResponse(
        '<!doctype html><title>Signed out</title><a href="/">Signed out: continue</a>',
        status_code=303,
        headers={"Location": "/"},
    )
    await end_session(request, response)
    return response


routes = [
    Route("/signout", post_signout_form, methods=["POST"]),
    Route("/api/session", get_session, methods=["GET"]),
    Route("/api/session", post_session, methods=["POST"]),
    Route("/api/session", delete_session, methods=["DELETE"]),
    Route("/api/session/code", post_code, methods=["POST"]),
    Route("/api/session/signup", post_signup, methods=["POST"]),
]
