"""The OpenAPI schema documents every route the app serves, with problem+json errors and security
schemes, and the running server serves it (/openapi.json) and renders it (/docs)."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest
from starlette.routing import Route

from booking.app import create_app
from booking.openapi import build_openapi
from booking.settings import load_settings

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def app_and_schema() -> tuple[Any, dict[str, Any]]:
    app = create_app(load_settings(env={}))  # no lifespan: nothing connects
    return app, build_openapi(app.routes, "test", "0")


def served(routes: Any) -> list[tuple[str, str]]:
    pairs = []
    for route in routes:
        assert isinstance(route, Route), f"{route!r}: teach booking/openapi.py to document it"
        pairs += [(route.path_format, m.lower()) for m in route.methods or () if m != "HEAD"]
    return pairs


def undocumented(routes: Any, schema: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p, m) for p, m in served(routes) if m not in schema["paths"].get(p, {})]


def resolve(schema: dict[str, Any], ref: str) -> Any:
    node: Any = schema
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_every_route_the_app_serves_is_in_the_schema(
    app_and_schema: tuple[Any, dict[str, Any]],
) -> None:
    app, schema = app_and_schema
    routes = served(app.routes)
    assert len(routes) >= 20
    missing = undocumented(app.routes, schema)
    assert not missing, f"undocumented routes (add @operation(...)): {missing}"
    documented = {(p, m) for p, ops in schema["paths"].items() for m in ops}
    assert documented == set(routes)


def test_operations_have_summaries_errors_and_security(
    app_and_schema: tuple[Any, dict[str, Any]],
) -> None:
    _, schema = app_and_schema
    assert schema["openapi"] == "3.1.0"
    schemes = schema["components"]["securitySchemes"]
    assert schemes["userBearer"] == schemes["userBearer"] | {"type": "http", "scheme": "bearer"}
    assert schemes["adminBearer"]["scheme"] == "bearer"
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            assert method in METHODS
            assert op["summary"] and op["operationId"] and op["responses"], (path, method)
            if not path.startswith("/api/"):
                continue
            errors = {s: r for s, r in op["responses"].items() if s >= "400"}
            assert errors, (path, method)
            for response in errors.values():
                assert "application/problem+json" in response["content"], (path, method)
            if path.startswith("/api/admin/"):
                assert op["security"] == [{"adminBearer": []}], path
                assert {"401", "403"} <= set(op["responses"]), path
    holds = schema["paths"]["/api/events/{event_id}/holds"]["post"]
    assert holds["security"] == [{"userBearer": []}]
    body = holds["requestBody"]["content"]["application/json"]["schema"]
    assert resolve(schema, body["$ref"])["properties"]["seat_ids"]["type"] == "array"
    users = resolve(schema, "#/components/schemas/NewUserBody")
    assert "pattern" in users["properties"]["name"]  # control characters are refused


def test_every_reference_resolves_and_every_schema_is_valid(
    app_and_schema: tuple[Any, dict[str, Any]],
) -> None:
    _, schema = app_and_schema
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    assert refs
    for ref in refs:
        resolve(schema, ref)
    for component in schema["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(component)


async def test_server_serves_the_schema_and_its_docs_page(http: httpx.AsyncClient) -> None:
    r = await http.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    schema = r.json()
    assert "/api/events/{event_id}/holds" in schema["paths"]
    r = await http.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for path in schema["paths"]:
        assert path.replace("{", "").replace("}", "") in r.text.replace("{", "").replace("}", "")
    assert "<script src=" not in r.text  # self-contained: nothing fetched from elsewhere


def test_an_undocumented_route_is_caught(app_and_schema: tuple[Any, dict[str, Any]]) -> None:
    app, _ = app_and_schema

    async def secret_endpoint(request: Any) -> Any:
        raise AssertionError("never called")

    routes = [*app.routes, Route("/api/undocumented", secret_endpoint, methods=["POST"])]
    assert undocumented(routes, build_openapi(routes, "test", "0")) == [
        ("/api/undocumented", "post")
    ]
