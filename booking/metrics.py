"""Prometheus metrics of the booking side, the HTTP middleware and the /metrics endpoint.

With several uvicorn workers or processes, set PROMETHEUS_MULTIPROC_DIR: every process writes
its samples there and /metrics aggregates them (prometheus-client's multiprocess mode). With
one process per port (the default `make run`), each process is its own scrape target.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from booking.core_services import find_core_services
from booking.settings import multiprocess_metrics_dir

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
HOLD_BATCH_SIZE = Histogram(
    "hold_batch_size",
    "Holds sent to PostgreSQL in one call and transaction (booking/hold_batch.py)",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
HOLD_BATCHES_RETRIED = Counter(
    "hold_batches_retried_total", "Hold batches that failed as a whole and went one by one"
)
BEARER_LOOKUPS = Counter(
    "bearer_lookups_total",
    "Bearer tokens looked up in PostgreSQL (no tag vouched for them and the cache missed)",
)
TOKEN_REVOCATION_READS_FAILED = Counter(
    "token_revocation_reads_failed_total",
    "Failed reads of the token revocations (booking/token_revocations.py)",
)
HOLD_CONFLICTS = Counter("hold_conflicts_total", "Holds refused because a seat was taken (409)")
HOLDS_CANCELLED = Counter(
    "holds_cancelled_total", "Holds cancelled by their owner (not paid reservations refunded)"
)
HOLDS_EXPIRED = Counter("holds_expired_total", "Holds released at expiry", ["by"])
PAYMENTS_REQUESTED = Counter("payments_requested_total", "Payment requests accepted (new keys)")
PAYMENTS_RESCUED = Counter(
    "payments_rescued_total", "Pending payments whose lost job the sweeper enqueued again"
)
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
RQ_JOB_DURATION = Histogram(
    "rq_job_duration_seconds",
    "RQ job duration in the worker, by job function and outcome (ok, error)",
    ["job", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
REDIS_COMMAND_LATENCY = Histogram(
    "redis_command_duration_seconds",
    "Redis command round trip from the asyncio client (a pipeline counts once as PIPELINE)",
    ["command"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)

# Every SQL statement is labelled by its first keyword, from this closed set (else "other").
_SQL_OPERATIONS = frozenset(
    {"select", "insert", "update", "delete", "with", "begin", "commit", "rollback", "set"}
)
# Redis command labels: anything else is "other", so a label can never carry user data.
_REDIS_COMMANDS = frozenset(
    {
        "GET", "SET", "DEL", "EXISTS", "EXPIRE", "PEXPIRE", "TTL", "PTTL", "INCR", "INCRBY",
        "MGET", "MSET", "HGET", "HSET", "HGETALL", "HDEL", "HINCRBY", "ZADD", "ZREM", "ZRANK",
        "ZCARD", "ZCOUNT", "ZRANGE", "ZRANGEBYSCORE", "ZSCORE", "ZPOPMIN", "EVAL", "EVALSHA",
        "SCRIPT", "PING", "PUBLISH", "UNLINK", "SCAN", "KEYS", "LPUSH", "RPUSH", "LLEN",
    }
)  # fmt: skip


def _record_query(record: Any) -> None:
    """asyncpg query logger: called (via call_soon) after every statement of the connection."""
    words = str(record.query).lstrip(" (\n\t").split(None, 1)
    operation = words[0].lower() if words else "other"
    if operation not in _SQL_OPERATIONS:
        operation = "other"
    DB_QUERY_LATENCY.labels(operation).observe(record.elapsed)


async def instrument_connection(conn: Any) -> None:
    """asyncpg pool `init` hook: record every query's latency in db_query_duration_seconds."""
    conn.add_query_logger(_record_query)


def _command_label(name: Any) -> str:
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    label = str(name).upper().split(" ", 1)[0]
    return label if label in _REDIS_COMMANDS else "other"


def instrument_redis_metrics() -> None:
    """Time every command of redis.asyncio clients (the web app's and the workers' side effects).

    redis-py's own OpenTelemetry metrics would need an OTel metrics pipeline and exporter next
    to prometheus-client; wrapping the two entry points (as the OTel redis instrumentation does
    for spans) keeps one metrics stack. Idempotent.
    """
    from redis.asyncio.client import Pipeline, Redis

    if getattr(Redis.execute_command, "_flashsale_timed", False):
        return
    original_command: Callable[..., Awaitable[Any]] = Redis.execute_command
    original_execute: Callable[..., Awaitable[Any]] = Pipeline.execute

    @functools.wraps(original_command)
    async def execute_command(self: Any, *args: Any, **options: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original_command(self, *args, **options)
        finally:
            label = _command_label(args[0]) if args else "other"
            REDIS_COMMAND_LATENCY.labels(label).observe(time.perf_counter() - started)

    @functools.wraps(original_execute)
    async def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original_execute(self, *args, **kwargs)
        finally:
            REDIS_COMMAND_LATENCY.labels("PIPELINE").observe(time.perf_counter() - started)

    execute_command._flashsale_timed = True  # type: ignore[attr-defined]
    Redis.execute_command = execute_command  # type: ignore[method-assign]
    Pipeline.execute = execute  # type: ignore[method-assign]


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
        # Built once per app: also the place where the app's Redis latency timing is installed.
        instrument_redis_metrics()

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
    if multiprocess_metrics_dir():
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()


async def metrics_endpoint(request: Request) -> Response:
    running = find_core_services(request.app)  # None outside the lifespan: process metrics only
    if running is not None:
        pool, jobs = running.pool, running.jobs
        DB_POOL_SIZE.labels("in_use").set(pool.get_size() - pool.get_idle_size())
        DB_POOL_SIZE.labels("idle").set(pool.get_idle_size())
        # len(queue) is a blocking Redis call: keep it off the event loop.
        depth = await run_in_threadpool(jobs.queue.__len__)
        RQ_QUEUE_DEPTH.labels(jobs.queue.name).set(depth)
    body = await run_in_threadpool(render_metrics)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
