"""The gate: the waiting room in front of any site, through nginx `auth_request`.

nginx (ops/nginx/gate/) sends every request of a protected site to `GET /gate/{event}/check`
first. The answer is 204 (let it through) when the request carries a valid admission cookie for
that event, else 401 with `X-Waiting-Room-Location`, where nginx redirects the buyer: the waiting
page, proxied under the site's own origin at `/_waitingroom/`, so that the cookies it sets are
the site's (host-only, path /, HttpOnly, SameSite=Lax, Secure in production).

Visitors of a gated site are anonymous: a random visitor id in a cookie is their queue identity.
The admission cookie holds an ordinary admission token (Ed25519 JWT) for that visitor. The check
verifies it offline (no Redis) while it has more than half its life left; past that it asks Redis
whether the admission is still active and, if so, sets a fresh token (nginx passes the
Set-Cookie on), so revocation takes effect within half a token lifetime.
"""

from __future__ import annotations

import math
import secrets
from typing import Any
from urllib.parse import quote

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from waitingroom.defence import JoinDefence
from waitingroom.errors import PollRateLimited, RoomClosed, TokenRejected, UnknownTicket
from waitingroom.ids import parse_id
from waitingroom.keys import is_safe_id
from waitingroom.problem import problem
from waitingroom.room import WaitingRoom
from waitingroom.routes import GetConfig, event_not_found, waiting_room_unavailable

PREFIX = "/_waitingroom"  # where nginx proxies the gate's pages on the protected site
VISITOR_COOKIE = "wr_visitor"
VISITOR_PREFIX = "v."  # visitor ids never collide with the app's numeric user ids
VISITOR_MAX_AGE = 86_400
LOCATION_HEADER = "X-Waiting-Room-Location"
_NO_STORE = {"Cache-Control": "no-store"}


def admission_cookie(event_id: str) -> str:
    return f"wr_admission_{event_id}"


def ticket_cookie(event_id: str) -> str:
    return f"wr_ticket_{event_id}"


def safe_return_path(raw: str | None) -> str:
    """A same-site path to go back to after admission (never another origin)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    if raw.startswith(PREFIX + "/") or len(raw) > 2000:
        return "/"
    return raw


def _unavailable() -> Response:
    return waiting_room_unavailable("retry shortly")


def set_gate_cookie(resp: Response, name: str, value: str, max_age: int, *, secure: bool) -> None:
    """Host-only (no Domain: the protected site only), whole site, never readable by scripts."""
    resp.set_cookie(
        name, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite="lax"
    )


class Gate:
    def __init__(
        self,
        room: WaitingRoom,
        get_config: GetConfig,
        templates: Jinja2Templates,
        secure: bool,
        defence: JoinDefence | None = None,
    ) -> None:
        self.room = room
        self.get_config = get_config
        self.templates = templates
        self.secure = secure
        self.defence = defence

    def _set(self, resp: Response, name: str, value: str, max_age: int) -> None:
        set_gate_cookie(resp, name, value, max_age, secure=self.secure)

    def _to_queue(self, request: Request, event_id: str) -> Response:
        back = safe_return_path(request.headers.get("x-original-uri"))
        location = f"{PREFIX}/waiting?return={quote(back, safe='')}"
        return Response(status_code=401, headers={LOCATION_HEADER: location, **_NO_STORE})

    async def check(self, request: Request) -> Response:
        event_id = str(request.path_params["event_id"])
        if parse_id(event_id) is None:  # outside bigint: no such room
            return event_not_found(event_id)
        token = request.cookies.get(admission_cookie(event_id))
        if token:
            signer = self.room.signer
            try:
                claims = signer.decode(token)
                if claims.event_id != event_id or not claims.user_id.startswith(VISITOR_PREFIX):
                    raise TokenRejected("wrong_event", "not this site's admission")
                if claims.expires_at - self.room.clock() > signer.ttl_seconds / 2:
                    return Response(status_code=204)
                fresh = await self.room.reissue(claims)
            except TokenRejected:
                fresh = None
            except RedisError:
                # Cannot tell whether it was revoked: a valid token still admits until it expires.
                return Response(status_code=204)
            if fresh is not None:
                resp = Response(status_code=204)
                self._set(resp, admission_cookie(event_id), fresh, signer.ttl_seconds)
                return resp
        config = await self.get_config(event_id)
        if config is not None and not config.enabled:
            return Response(status_code=204)  # no waiting room (any more): the site is open
        return self._to_queue(request, event_id)

    async def join(self, request: Request) -> Response:
        event_id = str(request.path_params["event_id"])
        config = None if parse_id(event_id) is None else await self.get_config(event_id)
        if config is None:
            return event_not_found(event_id)
        if self.defence is not None:
            # A new visitor cookie is free, so the per-address join limit is what bounds the
            # places one client can take through the gate.
            try:
                refusal = await self.defence.check_join(request, config, proof_of_work=False)
            except RedisError:
                return _unavailable()
            if refusal is not None:
                return refusal
        visitor = request.cookies.get(VISITOR_COOKIE, "")
        if not is_safe_id(visitor):
            visitor = secrets.token_urlsafe(16)
        try:
            ticket = await self.room.join(config, VISITOR_PREFIX + visitor)
        except RoomClosed:
            return problem(409, "Waiting room closed", "not open", "waiting-room-closed")
        except RedisError:
            return _unavailable()
        body: dict[str, Any] = {
            "status": ticket.status,
            "position": ticket.position,
            "eta_seconds": ticket.eta_seconds,
            "pre_queue": ticket.pre_queue,
            "paused": config.paused,
        }
        resp = JSONResponse(body, status_code=201, headers=_NO_STORE)
        self._set(resp, VISITOR_COOKIE, visitor, VISITOR_MAX_AGE)
        self._set(resp, ticket_cookie(event_id), ticket.ticket, VISITOR_MAX_AGE)
        return resp

    async def poll(self, request: Request) -> Response:
        event_id = str(request.path_params["event_id"])
        config = None if parse_id(event_id) is None else await self.get_config(event_id)
        if config is None:
            return event_not_found(event_id)
        ticket = request.cookies.get(ticket_cookie(event_id), "")
        try:
            result = await self.room.poll(config, ticket)
        except UnknownTicket:
            return problem(404, "Ticket not found", "join again", "ticket-not-found")
        except PollRateLimited as exc:
            retry = str(max(1, math.ceil(exc.retry_after_ms / 1000)))
            return problem(
                429,
                "Too many polls",
                "slow down",
                "poll-rate-limited",
                headers={"Retry-After": retry},
            )
        except RedisError:
            return _unavailable()
        body: dict[str, Any] = {
            "status": result.status,
            "position": result.position,
            "eta_seconds": result.eta_seconds,
            "pre_queue": result.pre_queue,
            "paused": config.paused,
        }
        resp = JSONResponse(body, headers=_NO_STORE)
        if result.admission_token is not None:
            # The cookie outlives the token: the check renews the token while admitted.
            self._set(
                resp,
                admission_cookie(event_id),
                result.admission_token,
                config.admission_window_seconds,
            )
        return resp

    async def waiting(self, request: Request) -> Response:
        event_id = str(request.path_params["event_id"])
        config = None if parse_id(event_id) is None else await self.get_config(event_id)
        return self.templates.TemplateResponse(
            request,
            "gate_waiting.html",
            {
                "event_id": event_id,
                "known": config is not None,
                "return_path": safe_return_path(request.query_params.get("return")),
                "prefix": PREFIX,
            },
            status_code=200 if config is not None else 404,
            headers=_NO_STORE,
        )


def build_gate_routes(
    room: WaitingRoom,
    get_config: GetConfig,
    templates: Jinja2Templates,
    *,
    secure: bool,
    defence: JoinDefence | None = None,
) -> list[BaseRoute]:
    gate = Gate(room, get_config, templates, secure, defence)
    base = "/gate/{event_id:int}"
    return [
        Route(f"{base}/check", gate.check, methods=["GET"], name="gate_check"),
        Route(f"{base}/join", gate.join, methods=["POST"], name="gate_join"),
        Route(f"{base}/poll", gate.poll, methods=["GET"], name="gate_poll"),
        Route(f"{base}/waiting", gate.waiting, methods=["GET"], name="gate_waiting"),
    ]
