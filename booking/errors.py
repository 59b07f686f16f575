"""RFC 9457 problem+json at the HTTP edge: the domain's refusals (booking.domain_errors) mapped to
a status once, `Problem` for what the edge itself refuses (request parsing, headers), handlers for
everything else. Bodies are rendered by waitingroom.problem, the service's one renderer and type
base."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from booking.domain_errors import (
    BookingError,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotAuthenticated,
    NotFound,
    RateLimited,
)
from booking.routes.notfound import not_found_page, wants_page
from waitingroom.problem import problem

log = logging.getLogger(__name__)

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(Exception):
    """An error answered as problem+json. `kind` becomes the type URI's last segment."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.title = title or TITLES.get(status, "Error")
        self.headers = headers or {}
        self.extra = extra


def problem_response(error: Problem) -> Response:
    headers = dict(error.headers)
    if error.status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return problem(error.status, error.title, error.detail, error.kind, headers, error.extra)


async def handle_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc)


# The one place the domain's refusals become HTTP statuses (first family in the MRO wins).
STATUS_BY_FAMILY: dict[type[BookingError], int] = {
    NotFound: 404,
    Conflict: 409,
    InvalidRequest: 422,
    Forbidden: 403,
    NotAuthenticated: 401,
    RateLimited: 429,
}


def status_of(error: BookingError) -> int:
    for family in type(error).__mro__:
        if family in STATUS_BY_FAMILY:
            return STATUS_BY_FAMILY[family]
    return 409  # BookingError itself: the state refused it


def problem_from(error: BookingError) -> Problem:
    headers = {}
    if isinstance(error, RateLimited) and error.retry_after_seconds is not None:
        headers["Retry-After"] = str(error.retry_after_seconds)
    return Problem(status_of(error), error.kind, error.detail, headers=headers, **error.facts)


async def handle_booking_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BookingError)
    return problem_response(problem_from(exc))


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404 and wants_page(request):
        return not_found_page(request)  # a mistyped address in a browser: a page, not JSON
    kind = TITLES.get(exc.status_code, "error").lower().replace(" ", "-")
    return problem_response(
        Problem(exc.status_code, kind, str(exc.detail), headers=dict(exc.headers or {}))
    )


async def handle_unavailable(request: Request, exc: Exception) -> Response:
    """PostgreSQL or Redis refused us (no free connection, restarting, unreachable): the client
    may retry, nothing was written half-way (transactions roll back), so 503 rather than 500."""
    log.warning("dependency unavailable on %s %s: %r", request.method, request.url.path, exc)
    return problem_response(
        Problem(
            503,
            "unavailable",
            "the service is overloaded or a backing store is unreachable; retry shortly",
            headers={"Retry-After": "1"},
        )
    )


async def handle_conflict(request: Request, exc: Exception) -> Response:
    """A uniqueness rule of the database refused the write (validation should have caught it
    first; this is the net under it). The transaction rolled back: nothing was written."""
    log.warning("unique violation on %s %s: %r", request.method, request.url.path, exc)
    return problem_response(Problem(409, "conflict", "the request conflicts with existing data"))


async def handle_bad_data(request: Request, exc: Exception) -> Response:
    """PostgreSQL (or asyncpg encoding a parameter) refused a value: the client's input is out of
    the database's range. Rolled back; the client must change the request."""
    log.warning("data refused on %s %s: %r", request.method, request.url.path, exc)
    return problem_response(
        Problem(422, "invalid-data", "a value is outside what the service can store")
    )


async def handle_client_disconnect(request: Request, exc: Exception) -> Response:
    """The client went away while its body was arriving (a closed tab, a load generator stopping
    mid-request). Nothing was read, nothing written: not a server error. The answer goes nowhere;
    it exists so access logs and metrics count a 4xx, not a 500."""
    log.info("client disconnected during the body of %s %s", request.method, request.url.path)
    return problem_response(
        Problem(400, "client-disconnected", "the client closed the connection mid-request")
    )


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(Problem(500, "internal", "an unexpected error occurred"))


EXCEPTION_HANDLERS: dict[Any, Any] = {
    Problem: handle_problem,
    BookingError: handle_booking_error,
    HTTPException: handle_http_exception,
    ClientDisconnect: handle_client_disconnect,
    asyncpg.UniqueViolationError: handle_conflict,
    asyncpg.IntegrityConstraintViolationError: handle_bad_data,
    asyncpg.DataError: handle_bad_data,
    asyncpg.TooManyConnectionsError: handle_unavailable,
    asyncpg.CannotConnectNowError: handle_unavailable,
    ConnectionError: handle_unavailable,
    RedisConnectionError: handle_unavailable,
    RedisTimeoutError: handle_unavailable,
    Exception: handle_unexpected,
}
