"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from booking import api_models as out
from booking.metrics import metrics_endpoint
from booking.openapi import Operation, document, operation
from booking.services import services

READY_TIMEOUT_SECONDS = 2.0


@operation(Operation("Liveness", "health", out.Health, backed=False))
async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


@operation(
    Operation(
        "Readiness: PostgreSQL and Redis answer",
        "health",
        out.Readiness,
        other={503: out.Readiness},
        backed=False,
    )
)
async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await services(request).pool.fetchval("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await services(request).redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


document(
    metrics_endpoint,
    Operation("Prometheus metrics of this process", "health", "text/plain", backed=False),
)

routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics_endpoint, methods=["GET"]),
]
