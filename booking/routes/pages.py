"""Browser pages: thin HTML shells rendered from jinja2 templates, and their static files.

The handlers never touch the database, Redis or the seat cache. They render a template with
the id from the path and the signed-in buyer's name read from the signed session cookie (no
lookup); the page's own JavaScript fetches the JSON API. That keeps a page view as cheap as
serving a static file during a surge. Anonymous views may be cached briefly; a signed-in
view names the buyer, so it is private. (The waiting page, which shows the buyer's place
without JavaScript, lives in `waiting.py`.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from booking.openapi import Operation, operation
from booking.requests import path_id
from booking.services import services
from booking.sessions import page_user

STATIC_DIR = Path(__file__).resolve().parent.parent.parent / "static"
_STATIC = StaticFiles(directory=STATIC_DIR)
_PUBLIC = {"Cache-Control": "public, max-age=60", "Vary": "Cookie"}
_PRIVATE = {"Cache-Control": "private, no-cache", "Vary": "Cookie"}


def _templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = services(request).templates
    return templates


def viewer(request: Request) -> dict[str, Any] | None:
    """The signed-in buyer as the layout shows them (id and name), or None."""
    cookie = page_user(request)
    return None if cookie is None else {"id": cookie.user_id, "name": cookie.name}


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    me = viewer(request)
    base = _PRIVATE if me is not None else _PUBLIC
    return _templates(request).TemplateResponse(
        request,
        name,
        {"me": me, **context},
        status_code=status_code,
        headers={**base, **(headers or {})},
    )


@operation(Operation("Events page (HTML)", "pages", "text/html", backed=False))
async def index_page(request: Request) -> Response:
    return render(request, "index.html", {})


@operation(
    Operation(
        "Sign-in page: sign up, or a one-time email code (HTML)", "pages", "text/html", backed=False
    )
)
async def signin_page(request: Request) -> Response:
    return render(request, "signin.html", {})


@operation(Operation("My bookings page (HTML)", "pages", "text/html", backed=False))
async def account_page(request: Request) -> Response:
    return render(request, "account.html", {})


@operation(Operation("Seat picker page (HTML)", "pages", "text/html", backed=False))
async def seats_page(request: Request) -> Response:
    return render(request, "seats.html", {"event_id": path_id(request, "event_id")})


@operation(Operation("Reservation page (HTML)", "pages", "text/html", backed=False))
async def reservation_page(request: Request) -> Response:
    reservation_id = path_id(request, "reservation_id")
    return render(request, "reservation.html", {"reservation_id": reservation_id})


@operation(Operation("Site icon (SVG)", "pages", "image/svg+xml", backed=False))
async def favicon(request: Request) -> Response:
    return FileResponse(
        STATIC_DIR / "favicon.svg",
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@operation(
    Operation(
        "The pages' scripts and icon (static/)",
        "pages",
        "text/javascript",
        problems=(404,),
        other={404: "text/html"},
        backed=False,
    )
)
async def static_file(request: Request) -> Response:
    """Files under static/ (path traversal is refused by Starlette's StaticFiles)."""
    response = await _STATIC.get_response(request.path_params["path"], request.scope)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


routes: list[BaseRoute] = [
    Route("/", index_page, methods=["GET"], name="index_page"),
    Route("/signin", signin_page, methods=["GET"], name="signin_page"),
    Route("/account", account_page, methods=["GET"], name="account_page"),
    Route("/events/{event_id:int}/seats", seats_page, methods=["GET"], name="seats_page"),
    Route(
        "/reservations/{reservation_id:int}",
        reservation_page,
        methods=["GET"],
        name="reservation_page",
    ),
    Route("/favicon.ico", favicon, methods=["GET"], name="favicon"),
    Route("/static/{path:path}", static_file, methods=["GET"], name="static"),
]
