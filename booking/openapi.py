"""OpenAPI 3.1, generated from the code: the app's routes (paths, methods, path parameters), each
handler's `@operation(...)` (summary, body and response pydantic models, who may call it, which
problems it answers), its docstring (the description) and the models' own JSON schemas.

A route with no operation is left out of the schema, and tests/test_openapi.py fails on it: a new
route is documented or the suite is red.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, TypeAdapter
from starlette.convertors import IntegerConvertor
from starlette.routing import BaseRoute, Route

from booking import api_models
from waitingroom.ids import PG_BIGINT_MAX

Auth = Literal["none", "user", "admin"]
F = TypeVar("F", bound=Callable[..., Any])
PROBLEM_MEDIA_TYPE = "application/problem+json"
JSON = "application/json"
# Why a status is answered, for every operation that can answer it.
STATUS_REASONS = {
    400: "malformed JSON, JSON nested too deep, a number too long, or a bad header",
    401: "no bearer token, or an unknown one",
    403: "not allowed (admin token required, or no valid admission)",
    404: "no such resource (ids outside 1..2^63-1 included)",
    409: "conflicts with the current state",
    413: "request body larger than MAX_BODY_BYTES (the connection is closed)",
    415: "body is not JSON",
    422: "the body fails validation (`errors` lists each field)",
    429: "rate limited: retry after `Retry-After` seconds",
    503: "a backing store is unreachable or overloaded: retry after `Retry-After` seconds",
}


@dataclass(frozen=True)
class Header:
    name: str
    description: str
    required: bool = False
    max_length: int | None = None


@dataclass(frozen=True)
class Operation:
    """How one handler is documented. `response` is a pydantic type (a model, `list[Model]`) for
    JSON, a media type string ("text/html") for anything else, or None for no body."""

    summary: str
    tag: str
    response: Any
    status: int = 200
    body: type[BaseModel] | None = None
    auth: Auth = "none"
    problems: tuple[int, ...] = ()
    headers: tuple[Header, ...] = ()
    # Non-problem answers besides the success one: status → pydantic type or media type.
    other: dict[int, Any] = field(default_factory=dict)
    backed: bool = True  # touches PostgreSQL/Redis: may answer 429/503


_OPERATIONS: dict[Callable[..., Any], Operation] = {}


def operation(doc: Operation) -> Callable[[F], F]:
    """Document a handler: `@operation(Operation(...))` above `async def handler(request)`."""

    def register(handler: F) -> F:
        _OPERATIONS[handler] = doc
        return handler

    return register


def document(handler: Callable[..., Any], doc: Operation) -> None:
    """Document a handler defined elsewhere (the waiting room's, which knows nothing of this)."""
    _OPERATIONS[handler] = doc


def operation_of(route: Route) -> Operation | None:
    return _OPERATIONS.get(route.endpoint)


class _Components:
    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def schema(self, kind: Any, mode: Literal["validation", "serialization"]) -> dict[str, Any]:
        generated = TypeAdapter(kind).json_schema(
            ref_template="#/components/schemas/{model}", mode=mode
        )
        self.schemas.update(generated.pop("$defs", {}))
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            self.schemas[kind.__name__] = generated
            return {"$ref": f"#/components/schemas/{kind.__name__}"}
        return generated

    def content(self, kind: Any) -> dict[str, Any]:
        if isinstance(kind, str):
            return {kind: {"schema": {"type": "string"}}}
        return {JSON: {"schema": self.schema(kind, "serialization")}}


def _path_parameters(route: Route) -> list[dict[str, Any]]:
    parameters = []
    for name, convertor in route.param_convertors.items():
        schema: dict[str, Any] = {"type": "string"}
        if isinstance(convertor, IntegerConvertor):
            schema = {"type": "integer", "minimum": 1, "maximum": PG_BIGINT_MAX}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return parameters


def _statuses(route: Route, doc: Operation) -> list[int]:
    statuses = set(doc.problems)
    if doc.body is not None:
        statuses |= {400, 413, 415, 422}
    if doc.auth == "user":
        statuses.add(401)
    if doc.auth == "admin":
        statuses |= {401, 403}
    if any(isinstance(c, IntegerConvertor) for c in route.param_convertors.values()):
        statuses.add(404)
    if doc.backed:
        statuses |= {429, 503}
    return sorted(statuses - {doc.status})


def _operation(route: Route, doc: Operation, components: _Components) -> dict[str, Any]:
    description = inspect.getdoc(route.endpoint) or ""
    responses: dict[str, Any] = {str(doc.status): {"description": "success"}}
    if doc.response is not None:  # None: an answer without a body (204, the gate's 401)
        responses[str(doc.status)]["content"] = components.content(doc.response)
    for status, kind in doc.other.items():
        responses[str(status)] = {"description": STATUS_REASONS.get(status, "see the body")}
        if kind is not None:
            responses[str(status)]["content"] = components.content(kind)
    problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for status in _statuses(route, doc):
        # A status answered both ways (a page's own 404 and the router's) documents both.
        response = responses.setdefault(str(status), {"description": STATUS_REASONS[status]})
        response["content"] = response.get("content", {}) | problem
    result: dict[str, Any] = {
        "tags": [doc.tag],
        "summary": doc.summary,
        "operationId": route.name,
        "parameters": _path_parameters(route)
        + [
            {
                "name": h.name,
                "in": "header",
                "required": h.required,
                "description": h.description,
                "schema": {"type": "string", "minLength": 1}
                | ({"maxLength": h.max_length} if h.max_length else {}),
            }
            for h in doc.headers
        ],
        "responses": responses,
    }
    if description:
        result["description"] = description
    if doc.body is not None:
        result["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": components.schema(doc.body, "validation")}},
        }
    if doc.auth == "user":
        result["security"] = [{"userBearer": []}]
    elif doc.auth == "admin":
        result["security"] = [{"adminBearer": []}]
    return result


def build_openapi(routes: Iterable[BaseRoute], title: str, version: str) -> dict[str, Any]:
    components = _Components()
    components.schema(api_models.Problem, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route) or (doc := operation_of(route)) is None:
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            ops = paths.setdefault(route.path_format, {})
            ops[method.lower()] = _operation(route, doc, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Flash-sale ticketing. Errors are RFC 9457 problem+json; limits and "
            "problem types are listed in docs/api.md.",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "securitySchemes": {
                "userBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the token POST /api/users answered with",
                },
                "adminBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the ADMIN_TOKEN setting",
                },
            },
        },
    }
