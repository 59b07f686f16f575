"""GET /openapi.json (the schema, generated from the running app's routes) and GET /docs (the
same schema rendered as one self-contained HTML page: no script, no CDN)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from booking.openapi import Operation, operation
from booking.services import services

_CACHE = {"Cache-Control": "public, max-age=60"}


def openapi_schema(request: Request) -> dict[str, Any]:
    """Built once per process: the routes do not change while it runs."""
    return services(request).openapi.get(request.app.routes)


@operation(Operation("This schema", "docs", dict[str, Any], backed=False))
async def get_openapi(request: Request) -> Response:
    """The OpenAPI 3.1 schema of this API."""
    return JSONResponse(openapi_schema(request), headers=_CACHE)


def _ref_name(schema: dict[str, Any]) -> str:
    ref = str(schema.get("$ref", ""))
    return ref.rsplit("/", 1)[-1]


@operation(Operation("This API's reference (HTML)", "docs", "text/html", backed=False))
async def get_docs(request: Request) -> Response:
    """This API's reference, rendered from the OpenAPI schema."""
    schema = openapi_schema(request)
    tags: dict[str, list[dict[str, Any]]] = {}
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            tags.setdefault(op["tags"][0], []).append({"path": path, "method": method, **op})
    templates: Jinja2Templates = services(request).templates
    return templates.TemplateResponse(
        request,
        "api_docs.html",
        {
            "schema": schema,
            "tags": tags,
            "ref_name": _ref_name,
            "pretty": lambda value: json.dumps(value, indent=2, ensure_ascii=False),
        },
        headers=_CACHE,
    )


routes: list[BaseRoute] = [
    Route("/openapi.json", get_openapi, methods=["GET"], name="openapi"),
    Route("/docs", get_docs, methods=["GET"], name="docs"),
]
