"""The browser pages: cheap HTML shells that call the JSON API from the browser.

Runs against a minimal app built from `booking.routes.pages.routes` alone: no database, no Redis.
The app state carries a tripwire where the pool, Redis and the seat cache would be, so a handler
that touched any of them would fail here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.templating import Jinja2Templates

from booking.errors import EXCEPTION_HANDLERS
from booking.routes.pages import routes

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


class Tripwire:
    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"a page handler touched a backend resource ({name})")


def build_app() -> Starlette:
    app = Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS)
    app.state.templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    app.state.pool = Tripwire()
    app.state.redis = Tripwire()
    app.state.seat_cache = Tripwire()
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
    assert "window.FS" in html
    assert '"flashsale.token"' in html
    assert '"flashsale.user"' in html
    return html


async def test_index_page(client: httpx.AsyncClient) -> None:
    html = await page(client, "/")
    assert '"/api/events"' in html
    assert '"/api/users"' in html
    assert "/waiting-room" in html
    assert 'id="who-form"' in html
    assert 'autocomplete="email"' in html


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
        "crypto.randomUUID",
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
