"""Browser tests: real Chromium (Debian's /usr/bin/chromium) driven by Playwright, against real
servers, PostgreSQL, Redis and an RQ worker.

One browser for the whole session; every buyer is a fresh browser context (own cookies and
storage), so several buyers run side by side in one test. Servers get short settings instead
of sleeps: the no-JavaScript page reloads every 2 s, and a second server holds seats for 3 s.
Playwright's own browser download is never used (`playwright install` is not needed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    async_playwright,
    expect,
)

from tests.conftest import ADMIN_TOKEN, free_port, start_server, stop

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# Hang-guards only: a step that takes longer than this is broken, not slow. Generous, because CI
# may run on a busy machine (one full-suite run on a loaded box took > 30 s for an admission).
STEP_MS = 90_000
# `expect(...)` has its own default (5 s), separate from the context's: the same hang-guard.
expect.set_options(timeout=STEP_MS)


def _require(what: str, available: bool) -> None:
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} is not installed")


@dataclass(frozen=True)
class Site:
    """A running server and an admin client for it."""

    base_url: str
    admin: httpx.AsyncClient

    async def event(
        self,
        *,
        rows: int = 2,
        seats_per_row: int = 10,
        waiting_room: bool = False,
        room: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        r = await self.admin.post(
            "/api/admin/events",
            json={
                "name": name or f"Browser test {uuid.uuid4().hex[:6]}",
                "venue": "Loopback Arena",
                "starts_at": "2030-01-01T20:00:00+00:00",
                "seats": [
                    {"section": "A", "rows": rows, "seats_per_row": seats_per_row, "price": 4200}
                ],
                "waiting_room_enabled": waiting_room,
            },
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
        event: dict[str, Any] = r.json()
        if room:
            r = await self.admin.patch(
                f"/api/admin/events/{event['id']}/waiting-room", json=room, headers=ADMIN
            )
            assert r.status_code == 200, r.text
            event = r.json()
        seats = (await self.admin.get(f"/api/events/{event['id']}/seats")).json()
        event["seat_ids"] = [s["id"] for s in seats]
        return event

    async def api_user(self, name: str = "Ahead") -> dict[str, Any]:
        email = f"{name.lower()}.{uuid.uuid4().hex[:10]}@example.com"
        r = await self.admin.post("/api/users", json={"name": name, "email": email})
        assert r.status_code == 201, r.text
        user: dict[str, Any] = r.json()
        return user


def _site_server(**env: str) -> Iterator[str]:
    port = free_port()
    proc = start_server(port, **env)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def browser_server(
    database_url: str, redis_url: str, rq_worker: subprocess.Popen[bytes]
) -> Iterator[str]:
    yield from _site_server(WAITING_PAGE_REFRESH_SECONDS="2", DB_POOL_MAX="8")


@pytest.fixture(scope="session")
def short_hold_server(
    database_url: str, redis_url: str, rq_worker: subprocess.Popen[bytes]
) -> Iterator[str]:
    yield from _site_server(HOLD_SECONDS="3", DB_POOL_MAX="4", ADMITTER_ENABLED="0")


@pytest.fixture
async def site(browser_server: str) -> AsyncIterator[Site]:
    async with httpx.AsyncClient(base_url=browser_server, timeout=30) as client:
        yield Site(browser_server, client)


@pytest.fixture
async def short_site(short_hold_server: str) -> AsyncIterator[Site]:
    async with httpx.AsyncClient(base_url=short_hold_server, timeout=30) as client:
        yield Site(short_hold_server, client)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    _require(CHROMIUM, shutil.which(CHROMIUM) is not None)
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


NewBuyer = Callable[..., Awaitable["Page"]]


@pytest.fixture
async def new_buyer(browser: Browser) -> AsyncIterator[NewBuyer]:
    """Open a fresh buyer (own cookies and storage) at a viewport; closed after the test.
    Page errors fail the test: a page whose script throws is broken."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    async def open_buyer(
        viewport: ViewportSize = DESKTOP, javascript: bool = True, base_url: str | None = None
    ) -> Page:
        context = await browser.new_context(
            viewport=viewport, java_script_enabled=javascript, base_url=base_url
        )
        context.set_default_timeout(STEP_MS)
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
        # Playwright dismisses confirm() unless told otherwise; buyers say yes in these tests.
        page.on("dialog", lambda dialog: dialog.accept())
        return page

    yield open_buyer
    for context in contexts:
        await context.close()
    assert not errors, errors


async def sign_up(page: Page, name: str) -> str:
    """Fill the sign-up form shown on the page; returns the email used."""
    email = f"{name.split()[0].lower()}.{uuid.uuid4().hex[:10]}@example.com"
    await page.fill("#signup-name", name)
    await page.fill("#signup-email", email)
    await page.click("#signup-submit")
    return email


async def sign_up_via_api(page: Page, name: str) -> dict[str, Any]:
    """Start a session in the page's browser context without the form (setup for other tests)."""
    email = f"{name.split()[0].lower()}.{uuid.uuid4().hex[:10]}@example.com"
    r = await page.context.request.post("/api/session/signup", data={"name": name, "email": email})
    assert r.status == 201, await r.text()
    body: dict[str, Any] = await r.json()
    return body
