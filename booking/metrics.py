"""Prometheus metrics of the booking side, the HTTP middleware and the /metrics endpoint.

With several uvicorn workers or processes, set PROMETHEUS_MULTIPROC_DIR: every process writes
its samples there and /metrics aggregates them (prometheus-client's multiprocess mode). With
one process per port (the default `make run`), each process is its own scrape target.
"""

from __future__ import annotations

import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests by route template and status",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HOLDS_CREATED = Counter("holds_created_total", "Holds created")
HOLD_CONFLICTS = Counter("hold_conflicts_total", "Holds refused because a seat was taken (409)")
HOLDS_CANCELLED = Counter("holds_cancelled_total", "Reservations cancelled by their owner")
HOLDS_EXPIRED = Counter("holds_expired_total", "Holds released at expiry", ["by"])
PAYMENTS_REQUESTED = Counter("payments_requested_total", "Payment requests accepted (new keys)")
PAYMENT_OUTCOMES = Counter("payment_outcomes_total", "Completed payment jobs", ["outcome"])
PAYMENT_LATENCY = Histogram("payment_job_seconds", "Payment job duration (provider + database)")
DB_POOL_SIZE = Gauge(
    "db_pool_connections", "asyncpg pool connections", ["state"], multiprocess_mode="livesum"
)
DB_QUERY_LATENCY = Histogram(
    "db_query_duration_seconds", "Database query latency by operation", ["operation"]
)
RQ_QUEUE_DEPTH = Gauge(
    "rq_queue_depth", "Jobs waiting in the RQ queue", ["queue"], multiprocess_mode="livemax"
)


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    if isinstance(route, BaseRoute):
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
    # Unmatched paths share one label so a scanner cannot blow up the label set.
    return "<unmatched>"


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = _route_template(scope)
            method = scope["method"]
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)


def render_metrics() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()


async def metrics_endpoint(request: Request) -> Response:
    pool = getattr(request.app.state, "pool", None)
    if pool is not None:
        DB_POOL_SIZE.labels("in_use").set(pool.get_size() - pool.get_idle_size())
        DB_POOL_SIZE.labels("idle").set(pool.get_idle_size())
    jobs = getattr(request.app.state, "jobs", None)
    if jobs is not None:
        RQ_QUEUE_DEPTH.labels(jobs.queue.name).set(len(jobs.queue))
    return Response(render_metrics(), media_type=CONTENT_TYPE_LATEST)
