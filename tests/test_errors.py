"""Error mapping: a refused backing store is a 503 problem the client may retry, not a 500."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from booking.errors import EXCEPTION_HANDLERS


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
