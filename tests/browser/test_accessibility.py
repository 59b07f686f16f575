"""axe-core (4.12, bundled by axe-playwright-python) on every page and state a buyer meets, at
1280×800 and 390×844: no serious or critical violations."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, expect

from tests.browser.conftest import VIEWPORTS, NewBuyer, Site, sign_up_via_api
from tests.browser.test_buyer_journey import pay, pick_and_hold

pytestmark = pytest.mark.browser
BLOCKING = ("serious", "critical")
AXE = Axe()
# A tab the buyer is not looking at, with notifications allowed: records what is notified.
BACKGROUND_TAB = """
Object.defineProperty(Document.prototype, "hidden", { configurable: true, get: () => true });
window.__notified = [];
window.Notification = class {
  constructor(title) { window.__notified.push(title); }
  static get permission() { return "granted"; }
  static requestPermission() { return Promise.resolve("granted"); }
};
"""


async def check(page: Page, label: str, found: list[str]) -> None:
    """Run axe on the page as it is now; record serious/critical violations with their nodes."""
    results = await AXE.run(page)
    for violation in results.response["violations"]:
        if violation["impact"] in BLOCKING:
            targets = [n["target"] for n in violation["nodes"]][:3]
            found.append(f"{label}: {violation['id']} ({violation['impact']}) {targets}")


async def admitted_elsewhere(site: Site, eid: int) -> None:
    """One API buyer takes the event's only admission slot (max_active = 1)."""
    user = await site.api_user("Chooser")
    headers = {"Authorization": f"Bearer {user['token']}"}
    ticket = (await site.admin.post(f"/api/events/{eid}/queue", headers=headers)).json()["ticket"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = await site.admin.get(f"/api/events/{eid}/queue/{ticket}")
        if r.status_code == 200 and r.json()["status"] == "admitted":
            return
        await asyncio.sleep(0.6)
    raise AssertionError("the first buyer was never admitted")


async def tour(new_buyer: NewBuyer, site: Site, viewport: str, events: dict[str, Any]) -> list[str]:
    found: list[str] = []
    page = await new_buyer(VIEWPORTS[viewport], base_url=site.base_url)
    await page.goto("/")
    await expect(page.locator(".event").first).to_be_visible()
    await check(page, f"{viewport} / signed out", found)
    await page.goto("/signin")
    await check(page, f"{viewport} /signin", found)
    full = events["full"]["id"]
    await page.goto(f"/events/{full}/waiting-room")
    await check(page, f"{viewport} waiting room, signed out", found)
    await page.goto("/events/999999999/waiting-room")
    await check(page, f"{viewport} waiting room, unknown event", found)

    await sign_up_via_api(page, f"Axe {viewport}")
    # max_active reached: the buyer waits at #1 and the page says why it cannot estimate.
    await page.goto(f"/events/{full}/waiting-room")
    await expect(page.locator("#wr-estimate")).to_contain_text("paused while 1 buyer chooses")
    await expect(page.locator("#wr-position")).to_have_text(re.compile(r"#\d+"))
    await check(page, f"{viewport} waiting room, paused line", found)

    open_id = events["open"]["id"]
    # The turn comes while the tab is in the background (as phones do): the page alerts the
    # buyer (title, notification) and waits for them instead of moving on unseen.
    tab = await page.context.new_page()
    await tab.add_init_script(BACKGROUND_TAB)
    await tab.goto(f"/events/{open_id}/waiting-room")
    await expect(tab.locator("#wr-turn")).to_be_visible()
    await expect(tab).to_have_title(re.compile("Your turn|Choose your seats now"))
    assert await tab.evaluate("window.__notified") == ["It's your turn!"]
    await expect(tab.locator("#wr-pass-left")).to_have_text(re.compile(r"^\d+:\d\d$"))
    await check(tab, f"{viewport} waiting room, your turn", found)
    await tab.close()
    # The pass is the buyer's, not the tab's: the first tab goes straight to the seat map.
    await page.goto(f"/events/{open_id}/seats")
    await expect(page.locator("#pass-box")).to_be_visible()
    await page.locator("#map button.seat.s-available").first.click()
    await check(page, f"{viewport} seat map with a selection", found)
    await page.locator("#map button.seat.s-selected").first.click()
    await pick_and_hold(page, skip=0 if viewport == "desktop" else 10)
    await expect(page.locator("#pay-btn")).to_be_visible()
    await check(page, f"{viewport} reservation, held", found)
    await pay(page)
    await check(page, f"{viewport} reservation, paid", found)
    await page.goto("/account")
    await expect(page.locator(".booking").first).to_be_visible()
    await check(page, f"{viewport} /account", found)
    await page.goto("/")
    await expect(page.locator(".event").first).to_be_visible()
    await check(page, f"{viewport} / signed in", found)
    return found


async def test_no_serious_or_critical_violations_on_any_page(
    new_buyer: NewBuyer, site: Site
) -> None:
    events = {
        "full": await site.event(waiting_room=True, room={"max_active": 1}),
        "open": await site.event(waiting_room=True, room={"admit_per_second": 5}),
    }
    await admitted_elsewhere(site, events["full"]["id"])
    found = await asyncio.gather(*(tour(new_buyer, site, v, events) for v in VIEWPORTS))
    violations = [v for per_viewport in found for v in per_viewport]
    assert not violations, "\n".join(violations)
