"""The browser pages: cheap HTML shells that call the JSON API from the browser.

Runs against a minimal app built from `booking.routes.pages.routes` alone: no database, no Redis.
Its services carry a tripwire where the pool, Redis, the caches and the rest would be, so a
handler that touched any of them would fail here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.templating import Jinja2Templates

from booking.core_services import install
from booking.errors import EXCEPTION_HANDLERS
from booking.routes.pages import routes
from booking.services import Services
from booking.sessions import COOKIE_NAME, SessionCookie, encode_cookie
from booking.settings import load_settings

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


class Tripwire:
    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"a page handler touched a backend resource ({name})")


def build_app() -> Starlette:
    app = Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS)
    backend: Any = Tripwire()
    install(
        app,
        Services(
            settings=load_settings(),
            templates=Jinja2Templates(directory=str(TEMPLATES_DIR)),
            redis=backend,
            waiting_room=backend,
            defence=backend,
            bearer_cache=backend,
            pool=backend,
            provider_pool=backend,
            provider=backend,
            jobs=backend,
            seat_cache=backend,
            holds=backend,
            room_cache=backend,
            bearer_lookup=backend,
            line_status=backend,
            bearer_key=backend,
            token_revocations=backend,
        ),
    )
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def page(client: httpx.AsyncClient, path: str) -> str:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "max-age" in response.headers.get("cache-control", "")
    html = response.text
    # Every page extends the shared layout: language, phone viewport, the shared helpers.
    assert '<html lang="en">' in html
    assert 'name="viewport"' in html
    assert "window.FS_ME = null;" in html  # nobody signed in: no cookie came
    assert 'src="/static/js/messages.js"' in html
    assert 'src="/static/js/fs.js"' in html
    assert 'href="/signin?next=' in html
    return html


async def test_index_page(client: httpx.AsyncClient) -> None:
    html = await page(client, "/")
    assert '"/api/events"' in html
    assert "/waiting-room" in html
    assert 'href="/signin"' in html


async def test_seat_map_page(client: httpx.AsyncClient) -> None:
    html = await page(client, "/events/7/seats")
    assert "const EVENT_ID = 7;" in html
    for needle in (
        '"/api/events/7"',
        '"/api/events/7/seats"',
        '"/api/events/7/holds"',
        '"/events/7/waiting-room"',
        "X-Admission-Token",
        "flashsale.admission.",
        "seat_ids",
        'aria-label="Legend"',
    ):
        assert needle in html, needle
    # No other event's id leaks in.
    assert "/api/events/8" not in html


async def test_reservation_page(client: httpx.AsyncClient) -> None:
    html = await page(client, "/reservations/42")
    assert "const RESERVATION_ID = 42;" in html
    for needle in (
        '"/api/reservations/42"',
        '"/api/reservations/42/payment"',
        "Idempotency-Key",
        '"DELETE"',
        "expires_at",
        "failure_reason",
    ):
        assert needle in html, needle


async def test_head_is_answered(client: httpx.AsyncClient) -> None:
    response = await client.head("/events/7/seats")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/events/abc/seats",
        "/reservations/abc",
        "/events/7/seat",
        "/events/0/seats",
        "/reservations/0",
        "/reservations/99999999999999999999",
    ],
)
async def test_unknown_or_impossible_ids_are_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404


async def test_pages_reject_other_methods(client: httpx.AsyncClient) -> None:
    response = await client.post("/events/7/seats")
    assert response.status_code == 405


async def test_signin_and_account_pages(client: httpx.AsyncClient) -> None:
    html = await page(client, "/signin")
    for needle in (
        'id="signup-form"',
        'id="code-form"',
        'autocomplete="one-time-code"',
        'for="signup-email"',
        "/static/js/signin.js",
    ):
        assert needle in html, needle
    html = await page(client, "/account")
    assert "/signin?next=/account" in html  # signed out: a way to sign in, no script


async def test_static_helpers_and_favicon(client: httpx.AsyncClient) -> None:
    fs = await client.get("/static/js/fs.js")
    assert fs.status_code == 200 and "javascript" in fs.headers["content-type"]
    for needle in ("flashsale.admission.", "crypto.randomUUID", "credentials", "/api/session"):
        assert needle in fs.text, needle
    messages = (await client.get("/static/js/messages.js")).text
    for kind in ("hold-expired", "admission-rejected", "not_active", "seats-unavailable"):
        assert f'"{kind}"' in messages or f"{kind}:" in messages, kind
    icon = await client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg")


async def get_with_cookie(client: httpx.AsyncClient, value: str) -> httpx.Response:
    client.cookies.set(COOKIE_NAME, value)
    return await client.get("/")


async def test_signed_in_header_comes_from_the_signed_cookie(client: httpx.AsyncClient) -> None:
    secret = load_settings().session_secret
    cookie = SessionCookie("t" * 20, 5, "Ada <Lovelace>", 4_000_000_000)
    response = await get_with_cookie(client, encode_cookie(secret, cookie))
    assert response.status_code == 200
    assert "Ada &lt;Lovelace&gt;" in response.text and 'href="/account"' in response.text
    assert '"id": 5' in response.text and "Ada \\u003cLovelace\\u003e" in response.text
    # A page naming the buyer is never stored by a shared cache.
    assert response.headers["cache-control"].startswith("private")
    forged = encode_cookie("another-secret", cookie)
    response = await get_with_cookie(client, forged)
    assert "Lovelace" not in response.text and "window.FS_ME = null;" in response.text
    expired = encode_cookie(secret, SessionCookie("t" * 20, 5, "Ada", 1))
    response = await get_with_cookie(client, expired)
    assert "window.FS_ME = null;" in response.text
