"""Screenshots of the buyer's journey, at 1280×800 and 390×844, into docs/screenshots/.

    python -m ops.screenshots [--out DIR]

Starts a web server and an RQ worker on the load harness (load/harness.py): a database created
for the run (`load_screenshots_<pid>_<random>`, migrated, dropped at the end) and a private
redis-server (stopped at the end), so nothing of anyone else's is dropped or flushed; the
harness's LOAD_PG_URL, LOAD_DATABASE, LOAD_KEEP_DATABASE and LOAD_REDIS_URL apply. Then drives
Debian's Chromium (/usr/bin/chromium) through every step and writes `NN-step-viewport.png`,
palette-quantised to stay small. Stops everything it started.
"""

from __future__ import annotations

import argparse
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, ViewportSize, sync_playwright

from load.harness import Stack

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORTS: dict[str, ViewportSize] = {
    "desktop": {"width": 1280, "height": 800},
    "phone": {"width": 390, "height": 844},
}
STEP_MS = 30_000


def service() -> Stack:
    """A web server and a worker of the harness's own; payments settle quickly. No proof of
    work: the line ahead of the buyer is filled through the API by buyers who solve none."""
    return Stack(
        "screenshots",
        env={
            "PAYMENT_LATENCY_MS": "50",
            "WORKER_METRICS_PORT": "0",
            "DB_POOL_MAX": "8",
            "POW_DIFFICULTY": "0",
        },
        workers=1,
    )


@dataclass
class Admin:
    client: httpx.Client

    def event(self, name: str, room: dict[str, Any] | None = None, wr: bool = True) -> int:
        r = self.client.post(
            "/api/admin/events",
            json={
                "name": name,
                "venue": "Loopback Arena",
                "starts_at": "2030-06-12T19:30:00+00:00",
                "seats": [
                    {"section": "Floor", "rows": 3, "seats_per_row": 20, "price": 15000},
                    {"section": "Balcony", "rows": 4, "seats_per_row": 20, "price": 6500},
                ],
                "waiting_room_enabled": wr,
            },
        )
        r.raise_for_status()
        event_id = int(r.json()["id"])
        if room:
            self.client.patch(f"/api/admin/events/{event_id}/waiting-room", json=room)
        return event_id

    def queue_buyer(self, event_id: int) -> str:
        email = f"fan.{uuid.uuid4().hex[:8]}@example.com"
        user = self.client.post("/api/users", json={"name": "Fan", "email": email}).json()
        headers = {"Authorization": f"Bearer {user['token']}"}
        r = self.client.post(f"/api/events/{event_id}/queue", headers=headers)
        return str(r.json()["ticket"])

    def wait_admitted(self, event_id: int, ticket: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = self.client.get(f"/api/events/{event_id}/queue/{ticket}")
            if r.status_code == 200 and r.json()["status"] == "admitted":
                return
            time.sleep(0.6)
        raise RuntimeError("not admitted")


def shrink(path: Path) -> None:
    """Quantise to a 256-colour palette: the pages are flat colours, this halves the size."""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=256).save(path, optimize=True)


class Camera:
    def __init__(self, out: Path, viewport: str) -> None:
        self.out = out
        self.viewport = viewport
        self.shots: list[Path] = []

    def __call__(self, page: Page, step: str) -> None:
        page.wait_for_timeout(300)  # let transitions settle
        path = self.out / f"{step}-{self.viewport}.png"
        page.screenshot(path=str(path))
        shrink(path)
        self.shots.append(path)


def sign_up(page: Page, name: str) -> None:
    page.fill("#signup-name", name)
    page.fill("#signup-email", f"{name.split()[0].lower()}.{uuid.uuid4().hex[:6]}@example.com")
    page.click("#signup-submit")


def journey(page: Page, admin: Admin, events: dict[str, int], shot: Camera, wide: bool) -> None:
    page.goto("/")
    page.locator(".event").first.wait_for()
    shot(page, "01-events")
    page.goto("/signin")
    shot(page, "02-signin")
    page.goto(f"/events/{events['slow']}/waiting-room")
    shot(page, "03-waiting-room-sign-up")
    sign_up(page, "Ada Lovelace" if wide else "Grace Hopper")
    page.locator("#wr-position").filter(has_text=re.compile(r"#\d+")).wait_for()
    page.locator("#wr-estimate").filter(has_text="Estimated wait").wait_for()
    shot(page, "04-waiting-in-line")
    page.goto(f"/events/{events['full']}/waiting-room")
    page.locator("#wr-estimate").filter(has_text="paused while").wait_for()
    shot(page, "05-waiting-line-paused")
    page.goto(f"/events/{events['open']}/waiting-room")
    page.locator("#wr-turn").wait_for()
    shot(page, "06-your-turn")
    page.wait_for_url(re.compile(r"/seats"))
    seats = page.locator("#map button.seat.s-available")
    seats.first.wait_for()
    skip = 0 if wide else 22
    for i in range(skip, skip + 2):
        seats.nth(i).click()
    shot(page, "07-seat-map")
    page.click("#hold-btn")
    page.wait_for_url(re.compile(r"/reservations/\d+$"))
    page.locator("#pay-btn").wait_for()
    shot(page, "08-checkout")
    page.click("#pay-btn")
    page.locator("#confirmation").wait_for()
    shot(page, "09-confirmation")
    page.goto("/account")
    page.locator(".booking").first.wait_for()
    shot(page, "10-my-bookings")
    page.goto(f"/events/{events['closed']}/waiting-room")
    shot(page, "11-waiting-room-closed")


def run(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    with service() as stack:
        base = stack.base_url
        headers = stack.admin_headers()
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            admin = Admin(client)
            events = {
                "open": admin.event("The Redis Quartet Live", {"admit_per_second": 20}),
                "slow": admin.event("Sorted Sets Unplugged", {"admit_per_second": 1}),
                "full": admin.event("Lua Script Symphony", {"max_active": 1}),
                "closed": admin.event("Cluster Slots Reunion Tour"),
            }
            admin.event(
                "Pub/Sub Night (coming soon)", {"sale_opens_at": "2030-05-01T10:00:00+00:00"}
            )
            admin.wait_admitted(events["full"], admin.queue_buyer(events["full"]))
            for _ in range(40):  # a line ahead, so the waiting page has a place to show
                admin.queue_buyer(events["slow"])
            client.patch(f"/api/admin/events/{events['closed']}", json={"status": "closed"})
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    for name, viewport in VIEWPORTS.items():
                        context = browser.new_context(viewport=viewport, base_url=base)
                        context.set_default_timeout(STEP_MS)
                        page = context.new_page()
                        page.on("dialog", lambda dialog: dialog.accept())
                        camera = Camera(out, name)
                        journey(page, admin, events, camera, name == "desktop")
                        shots.extend(camera.shots)
                        context.close()
                finally:
                    browser.close()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    shots = run(args.out)
    total = sum(p.stat().st_size for p in shots)
    print(f"{len(shots)} screenshots, {total // 1024} KiB, in {args.out}")


if __name__ == "__main__":
    main()
