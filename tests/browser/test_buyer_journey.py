"""The buyer's journey in Chromium, at 1280×800 and 390×844.

Each test states a guarantee a buyer relies on and checks it in the page and, where it matters,
in PostgreSQL. Waits are for page states (hang-guards of 30 s), never timing assertions.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import (
    ADMIN,
    DESKTOP,
    PHONE,
    VIEWPORTS,
    NewBuyer,
    Site,
    sign_up,
    sign_up_via_api,
)

pytestmark = pytest.mark.browser
REFERENCE = re.compile(r"[2-9A-HJKMNP-Z]{8}")


async def header_name(page: Page) -> str:
    return (await page.locator("#fs-me-name").inner_text()).strip()


async def pick_and_hold(page: Page, count: int = 1, skip: int = 0) -> int:
    """Select `count` available seats (after `skip` of them), hold them, land on the
    reservation; returns its id."""
    seats = page.locator("#map button.seat.s-available")
    await expect(seats.first).to_be_visible()
    for i in range(skip, skip + count):
        await seats.nth(i).click()
    await expect(page.locator("#hold-btn")).to_be_enabled()
    await page.click("#hold-btn")
    await page.wait_for_url(re.compile(r"/reservations/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


async def pay(page: Page) -> str:
    """Pay the reservation on screen; returns the booking reference on the confirmation."""
    await page.locator("#pay-btn").click()
    await expect(page.locator("#confirmation")).to_be_visible()
    reference = (await page.locator("#confirm-ref").inner_text()).strip()
    assert REFERENCE.fullmatch(reference), reference
    return reference


async def journey(new_buyer: NewBuyer, site: Site, event: dict[str, Any], viewport: str) -> None:
    page = await new_buyer(VIEWPORTS[viewport], base_url=site.base_url)
    name = f"Ada {viewport.title()}"
    await page.goto(f"/events/{event['id']}/waiting-room")
    await expect(page.locator("#wr-event-name")).to_have_text(event["name"])
    await sign_up(page, name)
    # Signed up in the waiting room: admitted, moved on to the seat map by the page itself.
    await page.wait_for_url(re.compile(rf"/events/{event['id']}/seats"))
    assert await header_name(page) == name
    await expect(page.locator("#pass-box")).to_be_visible()  # the admission window counts down
    # A second tab of the same buyer shares the identity and the pass (per buyer, not per tab).
    tab = await page.context.new_page()
    await tab.goto(f"/events/{event['id']}/seats")
    assert await header_name(tab) == name
    await expect(tab.locator("#pass-box")).to_be_visible()
    await expect(tab.locator("#wr-notice")).to_be_hidden()
    await tab.close()

    # Buyers of the same event in parallel take different seats (the race has its own test).
    reservation_id = await pick_and_hold(page, skip=0 if viewport == "desktop" else 10)
    assert await header_name(page) == name
    reference = await pay(page)
    await page.goto("/account")
    assert await header_name(page) == name
    booking = page.locator(".booking", has_text=reference)
    await expect(booking).to_contain_text("Booked")
    await expect(booking.locator("a").first).to_have_attribute(
        "href", f"/reservations/{reservation_id}"
    )
    await page.goto("/")
    assert await header_name(page) == name
    # Signing out is everywhere too, and ends the session for every tab.
    # The page is already at "/": wait for the sign-out form's own navigation (its POST and
    # redirect), or the next goto races it.
    async with page.expect_navigation(url=re.compile(r"/$")):
        await page.click("#fs-signout button")
    await expect(page.locator("#fs-signin-link")).to_be_visible()
    await page.goto("/account")
    await expect(page.locator("main")).to_contain_text("Sign in to see your bookings")


async def test_sign_up_in_the_waiting_room_then_book_on_both_viewports(
    new_buyer: NewBuyer, site: Site
) -> None:
    event = await site.event(
        waiting_room=True, room={"admit_per_second": 5, "admission_window_seconds": 600}
    )
    await asyncio.gather(
        journey(new_buyer, site, event, "desktop"), journey(new_buyer, site, event, "phone")
    )


async def test_a_queue_at_one_per_second_moves_the_buyer_on_by_itself(
    new_buyer: NewBuyer, site: Site
) -> None:
    event = await site.event(waiting_room=True, room={"admit_per_second": 1})
    eid = event["id"]
    # Three buyers (API clients) are ahead; at one admission a second the page must count down.
    for _ in range(3):
        user = await site.api_user()
        headers = {"Authorization": f"Bearer {user['token']}"}
        r = await site.admin.post(f"/api/events/{eid}/queue", headers=headers)
        assert r.status_code == 201
    page = await new_buyer(PHONE, base_url=site.base_url)
    await sign_up_via_api(page, "Queued Buyer")
    await page.goto(f"/events/{eid}/waiting-room")
    seen: list[tuple[int, str]] = []
    announced: set[str] = set()  # what screen readers were told (the aria-live region)
    deadline = time.monotonic() + 60
    while "/seats" not in page.url and time.monotonic() < deadline:
        try:
            text = await page.locator("#wr-position").inner_text(timeout=1000)
            estimate = await page.locator("#wr-estimate").inner_text(timeout=1000)
            announced.add((await page.locator("#wr-announce").inner_text(timeout=1000)).strip())
        except Exception:  # navigating to the seat map
            break
        match = re.fullmatch(r"#(\d+)", text.strip())
        if match and (not seen or seen[-1][0] != int(match.group(1))):
            seen.append((int(match.group(1)), estimate))
        await asyncio.sleep(0.2)
    await page.wait_for_url(re.compile(rf"/events/{eid}/seats"))
    positions = [p for p, _ in seen]
    assert len(positions) >= 2, seen
    assert positions == sorted(positions, reverse=True), seen  # only ever forward
    seconds = [int(m.group(1)) for _, e in seen if (m := re.search(r"about (\d+) s", e))]
    assert seconds and seconds == sorted(seconds, reverse=True), seen
    assert any(re.fullmatch(r"You are now number \d+ in line\.", a) for a in announced), announced


async def test_hold_pay_cancel_and_refund(new_buyer: NewBuyer, site: Site) -> None:
    event = await site.event(rows=1, seats_per_row=6)
    page = await new_buyer(DESKTOP, base_url=site.base_url)
    await sign_up_via_api(page, "Pay Er")
    # Cancel a hold: the seats go back.
    await page.goto(f"/events/{event['id']}/seats")
    await pick_and_hold(page)
    await page.click("#cancel-btn")
    await expect(page.locator("#status-badge")).to_contain_text("Cancelled")
    # Hold, pay, confirmation, then cancel the booking with a refund.
    await page.goto(f"/events/{event['id']}/seats")
    await pick_and_hold(page, 2)
    await pay(page)
    await page.click("#refund-btn")
    await expect(page.locator("#status-badge")).to_contain_text("Cancelled")
    await expect(page.locator("#pay-msg")).to_contain_text("refunded")
    await page.goto("/account")
    await expect(page.locator(".booking").first).to_contain_text("Cancelled and refunded")


async def test_a_short_hold_expires_on_screen(new_buyer: NewBuyer, short_site: Site) -> None:
    event = await short_site.event(rows=1, seats_per_row=4)
    page = await new_buyer(PHONE, base_url=short_site.base_url)
    await sign_up_via_api(page, "Slow Payer")
    await page.goto(f"/events/{event['id']}/seats")
    await pick_and_hold(page)
    await expect(page.locator("#status-badge")).to_contain_text("Expired")
    await expect(page.locator("#pay-msg")).to_contain_text("Nothing was charged")
    await expect(page.locator("#pay-btn")).to_be_hidden()


async def test_two_browsers_race_for_one_seat(
    new_buyer: NewBuyer, site: Site, db: asyncpg.Pool
) -> None:
    event = await site.event(rows=1, seats_per_row=3)
    seat = event["seat_ids"][0]
    pages = [await new_buyer(v, base_url=site.base_url) for v in (DESKTOP, PHONE)]
    for i, page in enumerate(pages):
        await sign_up_via_api(page, f"Racer {i}")
        await page.goto(f"/events/{event['id']}/seats")
        await page.locator(f'#map button[data-id="{seat}"]').click()
        await expect(page.locator("#hold-btn")).to_be_enabled()
    await asyncio.gather(*(page.click("#hold-btn") for page in pages))

    async def outcome(page: Page) -> str:
        won = page.wait_for_url(re.compile(r"/reservations/\d+$"))
        lost = expect(page.locator("#hold-msg")).to_contain_text("no longer available")
        _done, pending = await asyncio.wait(
            [asyncio.ensure_future(won), asyncio.ensure_future(lost)],
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in pending:
            task.cancel()
        return "won" if "/reservations/" in page.url else "lost"

    results = sorted(await asyncio.gather(*(outcome(p) for p in pages)))
    assert results == ["lost", "won"]
    active = await db.fetchval(
        "SELECT count(*) FROM reservation_seats WHERE seat_id = $1 AND active", seat
    )
    assert active == 1


async def test_the_sale_opens_at_sale_opens_at_while_the_buyer_waits(
    new_buyer: NewBuyer, site: Site
) -> None:
    far = "2100-01-01T00:00:00+00:00"
    event = await site.event(waiting_room=True, room={"sale_opens_at": far})
    eid = event["id"]
    page = await new_buyer(DESKTOP, base_url=site.base_url)
    await sign_up_via_api(page, "Early Bird")
    await page.goto(f"/events/{eid}/waiting-room")
    await expect(page.locator("#wr-position")).to_have_text("Drawn at opening")
    # The opening time arrives (moved to now): nobody flips a switch, the page moves on.
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    r = await site.admin.patch(
        f"/api/admin/events/{eid}/waiting-room", json={"sale_opens_at": now}, headers=ADMIN
    )
    assert r.status_code == 200
    await page.wait_for_url(re.compile(rf"/events/{eid}/seats"))
    await expect(page.locator("#sale-notice")).to_be_hidden()
    await pick_and_hold(page)


async def test_the_seat_page_unlocks_when_the_sale_opens(new_buyer: NewBuyer, site: Site) -> None:
    event = await site.event(room={"sale_opens_at": "2100-01-01T00:00:00+00:00"})
    page = await new_buyer(PHONE, base_url=site.base_url)
    await sign_up_via_api(page, "Watcher")
    await page.goto(f"/events/{event['id']}/seats")
    await expect(page.locator("#sale-notice")).to_contain_text("has not opened yet")
    await page.locator("#map button.seat.s-available").first.click()
    await expect(page.locator("#hold-btn")).to_be_disabled()
    soon = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 2))
    await site.admin.patch(
        f"/api/admin/events/{event['id']}/waiting-room",
        json={"sale_opens_at": soon},
        headers=ADMIN,
    )
    # The page re-reads the sale every 15 s and at the opening it knows of: no reload.
    await expect(page.locator("#sale-notice")).to_contain_text("sale is open", timeout=40_000)
    await expect(page.locator("#hold-btn")).to_be_enabled()


async def test_the_no_javascript_waiting_page_refreshes_itself(
    new_buyer: NewBuyer, site: Site
) -> None:
    event = await site.event(waiting_room=True, room={"admit_per_second": 1})
    eid = event["id"]
    for _ in range(2):
        user = await site.api_user()
        r = await site.admin.post(
            f"/api/events/{eid}/queue", headers={"Authorization": f"Bearer {user['token']}"}
        )
        assert r.status_code == 201
    page = await new_buyer(PHONE, javascript=False, base_url=site.base_url)
    await sign_up_via_api(page, "No Script")
    # Joining needs JavaScript (the proof-of-work gate); the page says so.
    await page.goto(f"/events/{eid}/waiting-room")
    # (innerText: what the buyer sees, <noscript> content included when scripts are off)
    assert "needs JavaScript" in await page.locator("#wr-joining").inner_text()
    joined = await page.context.request.post(f"/api/events/{eid}/queue")
    assert joined.status == 201
    loads: list[str] = []
    page.on("load", lambda loaded: loads.append(loaded.url))
    await page.goto(f"/events/{eid}/waiting-room")
    first = (await page.locator("#wr-position").inner_text()).strip()
    assert re.fullmatch(r"#\d+", first), first
    await expect(page.locator("#wr-turn")).to_be_visible(timeout=60_000)
    assert len(loads) >= 2  # it reloaded by itself at least once
    left = (await page.locator("#wr-pass-left").inner_text()).strip()
    assert re.fullmatch(r"\d+:\d\d", left) and left != "0:00", left  # the pass's time left
    assert await header_name(page) == "No Script"


async def test_readable_messages_and_a_selection_that_survives_a_lost_pass(
    new_buyer: NewBuyer, site: Site
) -> None:
    event = await site.event(waiting_room=True, room={"admit_per_second": 5})
    eid = event["id"]
    page = await new_buyer(DESKTOP, base_url=site.base_url)
    await sign_up_via_api(page, "Keeper")
    await page.goto(f"/events/{eid}/waiting-room")
    await page.wait_for_url(re.compile(rf"/events/{eid}/seats"))
    seat = event["seat_ids"][3]
    await page.locator(f'#map button[data-id="{seat}"]').click()
    # The pass is lost (here: the admin closes and reopens the sale, which clears the line).
    for status in ("closed", "on_sale"):
        r = await site.admin.patch(
            f"/api/admin/events/{eid}", json={"status": status}, headers=ADMIN
        )
        assert r.status_code == 200
    await page.click("#hold-btn")
    message = page.locator("#hold-msg")
    await expect(message).to_contain_text("pass to buy")
    await expect(message).not_to_contain_text("not_active")
    await message.locator("a").click()  # join the line again
    await page.wait_for_url(re.compile(rf"/events/{eid}/seats"))
    # Back with a new pass: the seat chosen before is still chosen.
    await expect(page.locator(f'#map button[data-id="{seat}"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    await page.goto("/events/999999999/seats")
    await expect(page.locator("#sale-notice")).to_contain_text("could not find this event")
    await expect(page.locator("#sale-notice")).not_to_contain_text("999999999")


async def test_own_seats_are_marked_on_the_map(new_buyer: NewBuyer, site: Site) -> None:
    event = await site.event(rows=1, seats_per_row=4)
    page = await new_buyer(DESKTOP, base_url=site.base_url)
    await sign_up_via_api(page, "Owner")
    await page.goto(f"/events/{event['id']}/seats")
    await pick_and_hold(page)
    await page.goto(f"/events/{event['id']}/seats")
    mine = page.locator("#map button.seat.s-mine")
    await expect(mine).to_have_count(1)
    await expect(mine).to_have_attribute("aria-label", re.compile("yours, on hold"))


async def test_http_client_still_uses_bearer_tokens(site: Site) -> None:
    user = await site.api_user("Api")
    async with httpx.AsyncClient(base_url=site.base_url) as client:
        r = await client.get(
            "/api/users/me/reservations", headers={"Authorization": f"Bearer {user['token']}"}
        )
    assert r.status_code == 200 and r.json() == {"reservations": []}
