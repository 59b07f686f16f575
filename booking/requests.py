"""Parsing and validation of request bodies, path ids and headers at the HTTP edge."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from booking.errors import Problem
from waitingroom.ids import PG_BIGINT_MAX, parse_id

__all__ = ["MAX_JSON_DEPTH", "MAX_NUMBER_DIGITS", "PG_BIGINT_MAX", "path_id", "read_json"]

# The JSON parser's (pydantic-core's jiter) own limits, refused as 400 before any validation:
# no recursion error, no unbounded int conversion. Bodies are also capped in size while they
# stream in (MAX_BODY_BYTES, booking/bodylimit.py).
MAX_JSON_DEPTH = 200
MAX_NUMBER_DIGITS = 4300
_PARSER_LIMITS = {
    "recursion limit exceeded": (
        "json-too-deep",
        f"JSON is nested deeper than {MAX_JSON_DEPTH} levels",
    ),
    "number out of range": (
        "number-too-large",
        f"a JSON number has more than {MAX_NUMBER_DIGITS} digits",
    ),
}

M = TypeVar("M", bound=BaseModel)


def _json_problem(message: str) -> Problem:
    for marker, (kind, detail) in _PARSER_LIMITS.items():
        if marker in message:
            return Problem(400, kind, detail)
    return Problem(400, "malformed-json", f"body is not valid JSON: {message}")


async def read_json(request: Request, model: type[M]) -> M:
    """Body → model, or a 4xx Problem saying precisely what is wrong."""
    content_type = request.headers.get("content-type", "")
    if content_type and "json" not in content_type:
        raise Problem(415, "unsupported-media-type", "send the body as application/json")
    raw = await request.body()
    if not raw.strip():
        raise Problem(422, "validation", "body must be a JSON object")
    try:
        # Strict JSON mode: no "1" → 1 or 1.0 → 1 coercion, but ISO datetime strings are accepted.
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        found = exc.errors(include_url=False, include_input=False, include_context=False)
        if found and found[0]["type"] == "json_invalid":
            raise _json_problem(found[0]["msg"]) from exc
        if found and found[0]["type"] == "model_type" and not found[0]["loc"]:
            raise Problem(422, "validation", "body must be a JSON object") from exc
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in found]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise Problem(422, "validation", detail, errors=errors) from exc


def path_id(request: Request, name: str) -> int:
    """A positive bigint id from the path; anything else is an id that cannot exist (404)."""
    value = parse_id(request.path_params[name])
    if value is None:
        raise Problem(
            404, "not-found", f"no such {name.removesuffix('_id')}: {request.path_params[name]}"
        )
    return value
