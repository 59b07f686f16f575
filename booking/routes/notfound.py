"""A mistyped address in a browser gets a page in the site's look, not problem+json.

Kept apart from the pages module: the error handlers use it, and the pages import the request
helpers, which import the errors.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from booking.core_services import core_services, find_core_services
from booking.sessions import page_user


def wants_page(request: Request) -> bool:
    """A browser navigating to a page (not an API client): answer HTML."""
    return (
        request.method in ("GET", "HEAD")
        and not request.url.path.startswith("/api/")
        and "text/html" in request.headers.get("accept", "")
        and find_core_services(request.app) is not None
    )


def not_found_page(request: Request) -> Response:
    templates: Jinja2Templates = core_services(request).templates
    cookie = page_user(request)
    me = None if cookie is None else {"id": cookie.user_id, "name": cookie.name}
    return templates.TemplateResponse(
        request,
        "not_found.html",
        {"me": me, "path": request.url.path},
        status_code=404,
        headers={"Cache-Control": "no-store"},
    )
