"""OpenTelemetry tracing: OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is set, off otherwise.

The payment request's trace context travels inside the RQ job's arguments, so the worker's
span continues the web request's trace.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from booking.settings import Settings

_configured = False


def setup_tracing(settings: Settings, extra_processor: SpanProcessor | None = None) -> bool:
    """Install a tracer provider once per process. True if spans are recorded."""
    global _configured
    if _configured:
        return True
    if not settings.otel_exporter_otlp_endpoint and extra_processor is None:
        return False
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.otel_service_name})
    )
    if settings.otel_exporter_otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if extra_processor is not None:
        provider.add_span_processor(extra_processor)
    trace.set_tracer_provider(provider)
    _configured = True
    return True


def current_carrier() -> dict[str, str]:
    """The active trace context as W3C headers, to hand to a job."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def job_span(name: str, carrier: dict[str, str], settings: Settings) -> Iterator[None]:
    setup_tracing(settings)
    tracer = trace.get_tracer("workers")
    ctx = propagate.extract(carrier)
    with tracer.start_as_current_span(f"job {name}", context=ctx, kind=trace.SpanKind.CONSUMER):
        yield
    provider = trace.get_tracer_provider()
    # The job runs in a short-lived work-horse process: flush before it exits.
    flush = getattr(provider, "force_flush", None)
    if flush is not None:
        flush()
