"""The admission token API other services use: the public keys (JWKS) and online verification."""

from __future__ import annotations

import json
from typing import Any

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from waitingroom.errors import TokenRejected
from waitingroom.problem import problem
from waitingroom.room import WaitingRoom
from waitingroom.routes import waiting_room_unavailable

MAX_BODY_BYTES = 8192
# Verifiers cache the key set this long; a new key is published at least this long before it
# signs (docs/admission.md, rotation).
JWKS_MAX_AGE_SECONDS = 300
# A token that does not authenticate is 401; a genuine one that no longer admits (or admits to
# another event) is 403.
_STATUS = {"forged": 401, "expired": 401, "revoked": 403, "wrong_event": 403, "wrong_user": 403}


def _bad_request(detail: str) -> Response:
    return problem(400, "Bad request", detail, "bad-request")


def _parse(body: bytes) -> tuple[str, str | None] | str:
    """(token, event or None), or an error message."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return 'the body must be JSON: {"token": "...", "event": 7 (optional)}'
    if not isinstance(data, dict) or set(data) - {"token", "event"}:
        return 'the body must be an object with "token" and optionally "event"'
    token, event = data.get("token"), data.get("event")
    if not isinstance(token, str) or not token or len(token) > 4096:
        return '"token" must be a non-empty string'
    if event is None:
        return token, None
    if isinstance(event, bool) or not isinstance(event, int | str):
        return '"event" must be an event id'
    event = str(event)
    if not event.isdigit() or len(event) > 19:
        return '"event" must be an event id'
    return token, event


def build_token_routes(room: WaitingRoom) -> list[BaseRoute]:
    async def jwks(request: Request) -> Response:
        return JSONResponse(
            room.signer.keys.jwks(room.clock()),
            headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE_SECONDS}"},
        )

    async def verify(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return problem(413, "Body too large", "at most 8 KiB", "too-large")
        parsed = _parse(body)
        if isinstance(parsed, str):
            return _bad_request(parsed)
        token, event = parsed
        try:
            claims = await room.verify(token, event)
        except TokenRejected as exc:
            return problem(
                _STATUS[exc.reason],
                "Admission token rejected",
                str(exc),
                f"admission-{exc.reason.replace('_', '-')}",
                extra={"reason": exc.reason},
            )
        except RedisError:
            return waiting_room_unavailable("the admission store is unreachable; retry shortly")
        out: dict[str, Any] = {
            "valid": True,
            "user": claims.user_id,
            "event": claims.event_id,
            "ticket": claims.ticket,
            "expires_at": claims.expires_at,
            "kid": claims.kid,
        }
        return JSONResponse(out, headers={"Cache-Control": "no-store"})

    return [
        Route("/.well-known/jwks.json", jwks, methods=["GET"], name="wr_jwks"),
        Route("/api/admission/verify", verify, methods=["POST"], name="wr_verify"),
    ]
