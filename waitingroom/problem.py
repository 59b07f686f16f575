"""RFC 9457 problem+json responses (the booking app has its own; this package stays apart)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.responses import Response

PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str,
    type_: str = "about:blank",
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, object] | None = None,
) -> Response:
    body: dict[str, object] = {"type": type_, "title": title, "status": status, "detail": detail}
    body.update(extra or {})
    return Response(
        json.dumps(body),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(headers or {}),
    )
