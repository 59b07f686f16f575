"""Parsing and validation of request bodies, path ids and headers at the HTTP edge."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from booking.errors import Problem

MAX_BODY_BYTES = 64 * 1024
PG_BIGINT_MAX = 2**63 - 1

M = TypeVar("M", bound=BaseModel)


async def read_json(request: Request, model: type[M]) -> M:
    """Body → model, or a 4xx Problem saying precisely what is wrong."""
    content_type = request.headers.get("content-type", "")
    if content_type and "json" not in content_type:
        raise Problem(415, "unsupported-media-type", "send the body as application/json")
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise Problem(422, "body-too-large", f"body is larger than {MAX_BODY_BYTES} bytes")
    try:
        data: Any = json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Problem(400, "malformed-json", f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise Problem(422, "validation", "body must be a JSON object")
    try:
        # Strict JSON mode: no "1" → 1 or 1.0 → 1 coercion, but ISO datetime strings are accepted.
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise Problem(422, "validation", detail, errors=errors) from exc


def path_id(request: Request, name: str) -> int:
    """A positive bigint id from the path ({name:int} routes); huge values are unknown ids."""
    value = request.path_params[name]
    if not isinstance(value, int) or value < 1 or value > PG_BIGINT_MAX:
        raise Problem(404, "not-found", f"no such {name.removesuffix('_id')}: {value}")
    return value
