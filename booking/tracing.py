"""OpenTelemetry tracing: OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is set, off otherwise.

The payment request's trace context travels inside the RQ job's arguments, so the worker's
span continues the web request's trace.

Spans of Redis and database calls made outside any request or job (the admitter's tick, RQ's
own polling and heartbeats) are not recorded: a root span of kind CLIENT is dropped by the
sampler, so traces in Jaeger are requests and jobs, not background noise.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from booking.settings import Settings

_provider: TracerProvider | None = None
_active = False


class DropOrphanClientSpans(Sampler):
    """Root sampler: record every root span except client calls (Redis/SQL) with no parent."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        if kind == SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "DropOrphanClientSpans"


def setup_tracing(settings: Settings, extra_processor: SpanProcessor | None = None) -> bool:
    """Install the process's tracer provider (once). True if spans are recorded.

    A later call with `extra_processor` adds it to the provider already installed (tests use an
    in-memory exporter this way); without one, a later call changes nothing.
    """
    global _provider, _active
    if _provider is not None:
        if extra_processor is not None:
            _provider.add_span_processor(extra_processor)
            _active = True
        return _active
    if not settings.otel_exporter_otlp_endpoint and extra_processor is None:
        return False
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.otel_service_name}),
        sampler=ParentBased(root=DropOrphanClientSpans()),
    )
    if settings.otel_exporter_otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if extra_processor is not None:
        provider.add_span_processor(extra_processor)
    trace.set_tracer_provider(provider)
    _provider = provider
    _active = True
    return True


def stop_tracing() -> None:
    """Stop instrumenting: later setup_tracing() calls (without a processor) answer False.

    For tests that turned tracing on in a shared process; OpenTelemetry's global provider
    cannot be replaced, so it stays installed but new apps and jobs are no longer instrumented.
    """
    global _active
    _active = False
    from booking.instrumentation import uninstrument_libraries

    uninstrument_libraries()


def current_carrier() -> dict[str, str]:
    """The active trace context as W3C headers, to hand to a job."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def job_span(name: str, carrier: dict[str, str], settings: Settings) -> Iterator[None]:
    """Run a job inside a CONSUMER span whose parent is the span that enqueued it."""
    if setup_tracing(settings):
        from booking.instrumentation import instrument_libraries

        instrument_libraries()
    tracer = trace.get_tracer("workers")
    ctx = propagate.extract(carrier)
    with tracer.start_as_current_span(f"job {name}", context=ctx, kind=SpanKind.CONSUMER):
        yield
    # The worker is a long-lived process (rq SimpleWorker, see workers/run.py): the batch
    # processor exports in the background and the provider flushes at exit.
