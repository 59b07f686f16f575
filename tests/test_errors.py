"""Error mapping: a refused backing store is a 503 problem the client may retry, not a 500; every
refusal of the booking domain is the same problem+json a client always received."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from booking.domain_errors import (
    AdmissionRejected,
    AdmissionRequired,
    AlreadyPaid,
    BookingError,
    BuyerSeatCapReached,
    CodeExpired,
    EmailTaken,
    EventNotFound,
    HoldCancelled,
    HoldExpired,
    IdempotencyKeyReused,
    InvalidCode,
    NotAnOperator,
    NotCancellable,
    NotOnSale,
    OperatorExists,
    OperatorNotFound,
    PaymentInProgress,
    ReservationNotFound,
    SeatsUnavailable,
    TooManyAccounts,
    TooManyAttempts,
    TooManyCodes,
    UnknownSeats,
    UserNotFound,
)
from booking.errors import EXCEPTION_HANDLERS, STATUS_BY_FAMILY
from booking.requests import read_json
from booking.statuses import EventStatus, ReservationStatus

ROOT = Path(__file__).resolve().parent.parent


def app_raising(exc: Exception) -> Starlette:
    async def endpoint(request: Request) -> Response:
        raise exc

    return Starlette(routes=[Route("/x", endpoint)], exception_handlers=EXCEPTION_HANDLERS)


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (asyncpg.TooManyConnectionsError("sorry, too many clients already"), 503),
        (ConnectionRefusedError(111, "Connect call failed"), 503),
        (RedisConnectionError("Error 111 connecting"), 503),
        (RuntimeError("a bug"), 500),
    ],
)
async def test_backing_store_refusals_are_503(exc: Exception, status: int) -> None:
    transport = httpx.ASGITransport(app=app_raising(exc), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.get("/x")
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    if status == 503:
        assert r.headers["retry-after"] == "1"


class _Body(BaseModel):
    seat_ids: list[int]


async def test_a_client_gone_mid_body_is_a_4xx_not_a_500() -> None:
    """What wrk does at the end of a run: the connection closes while the body is arriving."""

    async def endpoint(request: Request) -> Response:
        await read_json(request, _Body)
        raise AssertionError("the body never arrived")

    app = Starlette(
        routes=[Route("/x", endpoint, methods=["POST"])], exception_handlers=EXCEPTION_HANDLERS
    )
    parts: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"seat_ids": [', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return parts.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/x",
        "raw_path": b"/x",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 400
    body = json.loads(
        b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    )
    assert body["type"].endswith("/client-disconnected")


# Every refusal of the booking domain, and exactly what a client receives for it: the status,
# the body byte for byte (type under the one base, title, detail, extension members) and the
# headers the edge adds. The rows were written from the answers before the domain stopped
# raising HTTP problems, so a change to any of them is a change for clients.
BASE = "https://flashsale.example/problems/"
DOMAIN_ERRORS: list[tuple[BookingError, int, str, str, dict[str, Any], dict[str, str]]] = [
    (EventNotFound(7), 404, "not-found", "no such event: 7", {}, {}),
    (ReservationNotFound(8), 404, "not-found", "no such reservation: 8", {}, {}),
    (UserNotFound(9), 404, "not-found", "no such user: 9", {}, {}),
    (OperatorNotFound("ops"), 404, "not-found", "no active operator named 'ops'", {}, {}),
    (EmailTaken("a@b.co"), 409, "email-taken", "a user with email 'a@b.co' exists", {}, {}),
    (
        OperatorExists("ops"),
        409,
        "operator-exists",
        "an operator named 'ops' exists already",
        {},
        {},
    ),
    (NotAnOperator(), 403, "forbidden", "operator or admin token required", {}, {}),
    (
        CodeExpired(),
        401,
        "code-expired",
        "no valid code for this email: ask for a new one",
        {},
        {"www-authenticate": "Bearer"},
    ),
    (
        InvalidCode(3),
        401,
        "invalid-code",
        "that code is not right (3 tries left)",
        {},
        {"www-authenticate": "Bearer"},
    ),
    (
        TooManyAttempts(),
        429,
        "too-many-attempts",
        "too many wrong codes: ask for a new one",
        {},
        {},
    ),
    (
        TooManyCodes("at most 5 codes per 10 minutes for one email", retry_after_seconds=42),
        429,
        "too-many-codes",
        "at most 5 codes per 10 minutes for one email",
        {},
        {"retry-after": "42"},
    ),
    (
        TooManyAccounts("at most 3 new accounts per minute from one address", 1),
        429,
        "too-many-accounts",
        "at most 3 new accounts per minute from one address",
        {},
        {"retry-after": "1"},
    ),
    (NotOnSale(7, EventStatus.SCHEDULED), 409, "not-on-sale", "event 7 is scheduled", {}, {}),
    (
        AdmissionRequired(),
        403,
        "admission-required",
        "this event has a waiting room: send X-Admission-Token",
        {},
        {},
    ),
    (
        AdmissionRejected("wrong_user"),
        403,
        "admission-rejected",
        "admission token rejected: wrong_user",
        {"reason": "wrong_user"},
        {},
    ),
    (
        SeatsUnavailable("seats not available: [1, 2]", seat_ids=[1, 2]),
        409,
        "seats-unavailable",
        "seats not available: [1, 2]",
        {"seat_ids": [1, 2]},
        {},
    ),
    (
        UnknownSeats("seats not in event 7: [3]", seat_ids=[3]),
        422,
        "unknown-seats",
        "seats not in event 7: [3]",
        {"seat_ids": [3]},
        {},
    ),
    (
        BuyerSeatCapReached("at most 4 seats per buyer in event 7", cap=4, owned=4),
        409,
        "buyer-seat-cap",
        "at most 4 seats per buyer in event 7",
        {"cap": 4, "owned": 4},
        {},
    ),
    (HoldExpired(8), 409, "hold-expired", "reservation 8 hold has expired", {}, {}),
    (AlreadyPaid(8), 409, "already-paid", "reservation 8 is already paid", {}, {}),
    (HoldCancelled(8), 409, "hold-cancelled", "reservation 8 was cancelled", {}, {}),
    (
        PaymentInProgress("concurrent payment with the same key"),
        409,
        "payment-in-progress",
        "concurrent payment with the same key",
        {},
        {},
    ),
    (
        IdempotencyKeyReused(),
        422,
        "idempotency-key-reused",
        "this Idempotency-Key was used for another reservation",
        {},
        {},
    ),
    (
        NotCancellable(8, ReservationStatus.EXPIRED),
        409,
        "not-cancellable",
        "reservation 8 is expired",
        {},
        {},
    ),
]
TITLES = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict"}
TITLES |= {422: "Unprocessable Content", 429: "Too Many Requests"}


@pytest.mark.parametrize(
    ("error", "status", "kind", "detail", "members", "headers"),
    DOMAIN_ERRORS,
    ids=[type(row[0]).__name__ for row in DOMAIN_ERRORS],
)
async def test_domain_errors_answer_the_same_problem_as_before(
    error: BookingError,
    status: int,
    kind: str,
    detail: str,
    members: dict[str, Any],
    headers: dict[str, str],
) -> None:
    transport = httpx.ASGITransport(app=app_raising(error), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.get("/x")
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    body = {"type": BASE + kind, "title": TITLES[status], "status": status, "detail": detail}
    body |= members
    compact = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    assert r.content == compact
    for name, value in headers.items():
        assert r.headers[name] == value
    for name in {"retry-after", "www-authenticate"} - set(headers):
        assert name not in r.headers


def concrete_errors(cls: type[BookingError] = BookingError) -> set[type[BookingError]]:
    """Every error the domain can raise: the classes below the families."""
    found: set[type[BookingError]] = set()
    for sub in cls.__subclasses__():
        if sub not in STATUS_BY_FAMILY:
            found.add(sub)
        found |= concrete_errors(sub)
    return found


def test_every_domain_error_has_a_row_and_a_status() -> None:
    rows = {type(row[0]) for row in DOMAIN_ERRORS}
    assert concrete_errors() - rows == set(), "add a row to DOMAIN_ERRORS"
    for cls in concrete_errors():
        families = [c for c in cls.__mro__ if c in STATUS_BY_FAMILY]
        assert len(families) == 1, f"{cls.__name__} must belong to exactly one family"


# Kinds only an operator's tools see; every other kind has words for buyers in the pages' table.
OPERATOR_ONLY_KINDS = {"operator-exists"}


def test_every_buyer_facing_kind_has_words_in_the_pages_table() -> None:
    table = (ROOT / "static" / "js" / "messages.js").read_text(encoding="utf-8")
    kinds = {row[2] for row in DOMAIN_ERRORS} - OPERATOR_ONLY_KINDS
    missing = sorted(k for k in kinds if f'"{k}":' not in table)
    assert missing == [], f"static/js/messages.js has no words for {missing}"
