"""Distributed tracing: a payment's trace runs from the web request into the RQ worker's job.

The app is built in-process with an in-memory span exporter, driven through httpx's ASGI
transport, and the enqueued job is run by a real rq SimpleWorker (the class `workers.run` uses)
in this process, so both sides' spans land in the same exporter.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from redis import Redis
from rq import Queue, SimpleWorker

from booking.app import create_app
from booking.settings import Settings, load_settings
from booking.tracing import setup_tracing, stop_tracing
from tests.conftest import ADMIN_TOKEN, bearer, make_event, make_user
from workers.runtime import close_runtime

PAYMENT_ROUTE = "/api/reservations/{reservation_id:int}/payment"


def _settings(database_url: str, redis_url: str, queue: str) -> Settings:
    return load_settings(
        env={},
        database_url=database_url,
        redis_url=redis_url,
        rq_queue=queue,
        admin_token=ADMIN_TOKEN,
        admission_secret="test-admission-secret",
        admitter_enabled=False,
        payment_latency_ms=0,
        db_pool_min=1,
        db_pool_max=4,
        otel_exporter_otlp_endpoint="",
    )


async def _request_payment(settings: Settings) -> int:
    """Hold two seats and ask to pay, through the in-process app. Returns the reservation id."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            event = await make_event(http, rows=1, seats_per_row=2)
            user = await make_user(http, "Traced Buyer")
            hold = await http.post(
                f"/api/events/{event['id']}/holds",
                json={"seat_ids": event["seat_ids"]},
                headers=bearer(user),
            )
            assert hold.status_code == 201, hold.text
            rid = int(hold.json()["reservation_id"])
            paid = await http.post(
                f"/api/reservations/{rid}/payment",
                headers={**bearer(user), "Idempotency-Key": f"trace-{uuid.uuid4().hex}"},
            )
            assert paid.status_code == 202, paid.text
            return rid


def _run_jobs(redis_url: str, queue_name: str) -> None:
    """Run the queued jobs with rq's SimpleWorker in this (main) thread, as workers.run does."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    connection = Redis.from_url(redis_url)
    try:
        queue = Queue(queue_name, connection=connection)
        assert len(queue) == 1, "the payment request should have enqueued exactly one job"
        worker = SimpleWorker([queue], connection=connection)
        assert worker.work(burst=True, logging_level="WARNING")
        assert len(queue) == 0
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        connection.close()


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    chain: list[ReadableSpan] = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        ancestor = by_id[parent.span_id]
        chain.append(ancestor)
        parent = ancestor.parent
    return chain


def test_payment_trace_spans_request_and_worker_job(
    database_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    queue_name = f"test-tracing-{uuid.uuid4().hex[:8]}"
    settings = _settings(database_url, redis_url, queue_name)
    # The job reads its settings from the environment, as in a worker process.
    for name, value in {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "RQ_QUEUE": queue_name,
        "ADMISSION_SECRET": "test-admission-secret",
        "PAYMENT_LATENCY_MS": "0",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "",
    }.items():
        monkeypatch.setenv(name, value)
    assert setup_tracing(settings, extra_processor=SimpleSpanProcessor(exporter))

    # A sync test: the app gets its own event loop, and the job's asyncio.run gets the thread.
    try:
        asyncio.run(_request_payment(settings))
        _run_jobs(redis_url, queue_name)
        spans = exporter.get_finished_spans()
    finally:
        close_runtime()  # the jobs' loop and pool were opened with this test's environment
        # OpenTelemetry's provider stays installed for this process: stop instrumenting the
        # libraries and apps built by later tests, and stop collecting into this exporter.
        stop_tracing()
        exporter.shutdown()
    assert not setup_tracing(settings), "tracing should be off again for later tests"
    by_id = {s.context.span_id: s for s in spans}
    requests = [
        s
        for s in spans
        if s.kind == SpanKind.SERVER and (s.attributes or {}).get("http.route") == PAYMENT_ROUTE
    ]
    assert len(requests) == 1, [s.name for s in spans]
    request = requests[0]
    jobs = [s for s in spans if s.name == "job complete_payment"]
    assert len(jobs) == 1, [s.name for s in spans]
    job = jobs[0]

    assert job.kind == SpanKind.CONSUMER
    assert job.context.trace_id == request.context.trace_id
    assert request in _ancestors(job, by_id), "the job span's parents never reach the request"
    assert job.status.is_ok

    # Library instrumentation: the job's SQL and the request's SQL and Redis calls are children.
    def in_trace(s: ReadableSpan, root: ReadableSpan) -> bool:
        return root in _ancestors(s, by_id)

    job_children: list[dict[str, Any]] = [
        dict(s.attributes or {}) for s in spans if in_trace(s, job)
    ]
    assert any("db.statement" in a or "db.query.text" in a for a in job_children), job_children
    request_kinds = {s.kind for s in spans if in_trace(s, request)}
    assert SpanKind.CLIENT in request_kinds
    request_systems = {
        str((s.attributes or {}).get("db.system", (s.attributes or {}).get("db.system.name")))
        for s in spans
        if in_trace(s, request)
    }
    assert "postgresql" in request_systems and "redis" in request_systems, request_systems

    # Background Redis/SQL calls outside any request or job leave no orphan root spans.
    orphans = [s for s in spans if s.parent is None and s.kind == SpanKind.CLIENT]
    assert orphans == []
