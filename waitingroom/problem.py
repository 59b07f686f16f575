"""RFC 9457 problem+json responses: the one type base and the one renderer of the service.

Every problem the service answers, the waiting room's and the booking app's (booking/errors.py
renders through `problem` too), has a `type` under PROBLEM_TYPE_BASE ending in its kind, the
segment clients map to words (static/js/messages.js). It lives here because waitingroom must
not import booking.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse, Response

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://flashsale.example/problems/"


def problem_type(kind: str) -> str:
    """The type URI of a kind ("ticket-not-found" -> PROBLEM_TYPE_BASE + "ticket-not-found")."""
    return PROBLEM_TYPE_BASE + kind


def problem(
    status: int,
    title: str,
    detail: str,
    kind: str,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, object] | None = None,
) -> Response:
    """A problem+json answer: type, title, status, detail, then the extension members."""
    body: dict[str, object] = {
        "type": problem_type(kind),
        "title": title,
        "status": status,
        "detail": detail,
    }
    body.update(extra or {})
    return JSONResponse(
        body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=dict(headers or {})
    )
