"""Browser pages: thin HTML shells rendered from jinja2 templates.

The handlers never touch the database, Redis or the seat cache. They render a template with
nothing but the id from the path; the page's own JavaScript fetches the JSON API. That keeps a
page view as cheap as serving a static file during a surge, and lets a CDN or the browser cache it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from booking.openapi import Operation, operation
from booking.requests import path_id

# The shells hold no per-user data (the token lives in the browser), so they may be cached briefly.
_CACHE_HEADERS = {"Cache-Control": "public, max-age=60"}


def _templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


def _render(request: Request, name: str, context: dict[str, int]) -> Response:
    return _templates(request).TemplateResponse(request, name, context, headers=_CACHE_HEADERS)


@operation(Operation("Events page (HTML)", "pages", "text/html", backed=False))
async def index_page(request: Request) -> Response:
    return _render(request, "index.html", {})


@operation(Operation("Seat picker page (HTML)", "pages", "text/html", backed=False))
async def seats_page(request: Request) -> Response:
    return _render(request, "seats.html", {"event_id": path_id(request, "event_id")})


@operation(Operation("Reservation page (HTML)", "pages", "text/html", backed=False))
async def reservation_page(request: Request) -> Response:
    reservation_id = path_id(request, "reservation_id")
    return _render(request, "reservation.html", {"reservation_id": reservation_id})


routes: list[BaseRoute] = [
    Route("/", index_page, methods=["GET"], name="index_page"),
    Route("/events/{event_id:int}/seats", seats_page, methods=["GET"], name="seats_page"),
    Route(
        "/reservations/{reservation_id:int}",
        reservation_page,
        methods=["GET"],
        name="reservation_page",
    ),
]
