"""The operator page (/admin) in a real Chromium (Playwright, the system binary): sign in once per
browser session, rooms live, pause/resume and rate controls, the action record."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
TIMEOUT_MS = 15_000
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[dev]')")
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        _missing("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _room(live_server: str) -> int:
    r = httpx.post(
        f"{live_server}/api/admin/events",
        json={
            "name": "Operator page room",
            "starts_at": "2030-01-01T20:00:00+00:00",
            "seats": [{"section": "A", "rows": 1, "seats_per_row": 2, "price": 1}],
            "waiting_room_enabled": True,
        },
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _settings(live_server: str, event_id: int) -> dict[str, Any]:
    r = httpx.get(f"{live_server}/api/admin/rooms", headers=ADMIN)
    return next(room for room in r.json()["rooms"] if room["event_id"] == event_id)


def test_operator_page_signs_in_once_shows_rooms_and_controls_them(
    browser: Any, live_server: str
) -> None:
    from playwright.sync_api import expect

    eid = _room(live_server)
    httpx.patch(
        f"{live_server}/api/admin/events/{eid}/waiting-room", json={"paused": True}, headers=ADMIN
    ).raise_for_status()
    for i in range(3):  # three buyers waiting (paused, so they stay waiting)
        user = httpx.post(
            f"{live_server}/api/users", json={"name": f"W{i}", "email": f"w{i}.{eid}@example.com"}
        ).json()
        r = httpx.post(
            f"{live_server}/api/events/{eid}/queue",
            headers={"Authorization": f"Bearer {user['token']}"},
        )
        assert r.status_code == 201, r.text

    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(f"{live_server}/admin")
        page.fill("#token", "wrong-token")
        page.click("button[type=submit]")
        expect(page.locator("#message")).to_contain_text("not accepted")
        page.fill("#token", ADMIN_TOKEN)
        page.click("button[type=submit]")
        expect(page.locator("#operator")).to_have_text("admin-token")
        row = page.get_by_test_id(f"room-{eid}")
        expect(page.get_by_test_id(f"waiting-{eid}")).to_have_text("3")
        expect(page.get_by_test_id(f"state-{eid}")).to_have_text("paused")

        # Signed in once per browser session: a reload (or a new tab of it) stays signed in.
        page.reload()
        expect(page.get_by_test_id(f"state-{eid}")).to_have_text("paused")

        page.get_by_test_id(f"toggle-{eid}").click()  # resume: the three are admitted live
        expect(page.get_by_test_id(f"state-{eid}")).to_have_text("admitting")
        expect(page.get_by_test_id(f"waiting-{eid}")).to_have_text("0")
        expect(page.get_by_test_id(f"active-{eid}")).to_have_text("3")
        assert _settings(live_server, eid)["paused"] is False

        page.get_by_test_id(f"toggle-{eid}").click()  # pause again
        expect(page.get_by_test_id(f"state-{eid}")).to_have_text("paused")
        assert _settings(live_server, eid)["paused"] is True

        page.get_by_test_id(f"admit_per_second-{eid}").fill("7")
        page.get_by_test_id(f"set-admit_per_second-{eid}").click()
        page.locator("body").click()  # leave the input: the row redraws
        expect(page.get_by_test_id(f"admit_per_second-{eid}")).to_have_value("7")
        assert _settings(live_server, eid)["admit_per_second"] == 7

        page.get_by_test_id(f"max_active-{eid}").fill("0")
        page.get_by_test_id(f"set-max_active-{eid}").click()
        expect(page.locator("#message")).to_contain_text("max_active")
        assert _settings(live_server, eid)["max_active"] == 200

        # Every action listed on the page, newest first, with who and what changed.
        actions = page.get_by_test_id("action")
        expect(actions.first).to_contain_text("room.update")
        expect(actions.first).to_contain_text("admit_per_second: 10 → 7")
        expect(actions.nth(1)).to_contain_text("room.pause")
        expect(actions.nth(2)).to_contain_text("room.resume")
        expect(actions.nth(2)).to_contain_text("paused: true → false")
        expect(actions.nth(2)).to_contain_text("admin-token")
        assert row.is_visible()

        # A new browser session must sign in again.
        other = browser.new_context().new_page()
        other.goto(f"{live_server}/admin")
        expect(other.locator("#signin")).to_be_visible()
        expect(other.locator("#console")).to_be_hidden()
        other.context.close()
    finally:
        context.close()


def test_a_late_answer_does_not_clear_the_message_of_a_later_action(
    browser: Any, live_server: str
) -> None:
    """An operator sets a rate, then types an invalid cap before the rate's answer is back: the
    cap's message stays (the rate's success used to clear it, whichever came last)."""
    from playwright.sync_api import Route, expect

    eid = _room(live_server)
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    held: list[Route] = []

    def hold_patches(route: Route) -> None:
        if route.request.method == "PATCH":
            held.append(route)  # answered below, after the later action
        else:
            route.continue_()

    try:
        page.goto(f"{live_server}/admin")
        page.fill("#token", ADMIN_TOKEN)
        page.click("button[type=submit]")
        expect(page.get_by_test_id(f"room-{eid}")).to_be_visible()
        page.route(f"**/api/admin/events/{eid}/waiting-room", hold_patches)
        page.get_by_test_id(f"admit_per_second-{eid}").fill("9")
        page.get_by_test_id(f"set-admit_per_second-{eid}").click()
        for _ in range(150):  # the page's PATCH reaches the handler (bounded: 15 s)
            if held:
                break
            page.wait_for_timeout(100)
        assert len(held) == 1
        page.get_by_test_id(f"max_active-{eid}").fill("0")
        page.get_by_test_id(f"set-max_active-{eid}").click()
        expect(page.locator("#message")).to_contain_text("max_active")
        held[0].continue_()  # the rate's answer arrives now, after the cap's message
        expect(page.get_by_test_id("action").first).to_contain_text("admit_per_second: 10 → 9")
        assert _settings(live_server, eid)["admit_per_second"] == 9
        expect(page.locator("#message")).to_contain_text("max_active")
    finally:
        context.close()
