"""OpenTelemetry instrumentation of the web app and the libraries it calls.

`booking.app.create_app` calls `instrument_app(app)` when tracing is on (see
`booking.tracing.setup_tracing`: OTEL_EXPORTER_OTLP_ENDPOINT set, or a test's span processor).
Each request gets a SERVER span (Starlette); asyncpg queries and Redis commands inside it become
CLIENT child spans; a payment's RQ job continues the request's trace (`booking.tracing.job_span`).
"""

from __future__ import annotations

from starlette.applications import Starlette

from booking.settings import library_default

# Read by the Starlette instrumentation at import: probes and scrapes are not worth a trace.
EXCLUDED_URLS = "/metrics,/healthz,/readyz,/static"
library_default("OTEL_PYTHON_STARLETTE_EXCLUDED_URLS", EXCLUDED_URLS)

_libraries_done = False


def instrument_libraries() -> None:
    """Instrument asyncpg and redis-py (sync and asyncio) process-wide, once."""
    global _libraries_done
    if _libraries_done:
        return
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    asyncpg_instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
    if not asyncpg_instrumentor.is_instrumented_by_opentelemetry:
        asyncpg_instrumentor.instrument()
    redis_instrumentor = RedisInstrumentor()
    if not redis_instrumentor.is_instrumented_by_opentelemetry:
        redis_instrumentor.instrument()
    _libraries_done = True


def uninstrument_libraries() -> None:
    """Undo instrument_libraries() (booking.tracing.stop_tracing uses it)."""
    global _libraries_done
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    asyncpg_instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
    if asyncpg_instrumentor.is_instrumented_by_opentelemetry:
        asyncpg_instrumentor.uninstrument()
    redis_instrumentor = RedisInstrumentor()
    if redis_instrumentor.is_instrumented_by_opentelemetry:
        redis_instrumentor.uninstrument()
    _libraries_done = False


def instrument_app(app: Starlette) -> None:
    """Add the OpenTelemetry ASGI middleware to `app` and instrument its libraries."""
    from opentelemetry.instrumentation.starlette import StarletteInstrumentor

    StarletteInstrumentor.instrument_app(app)
    instrument_libraries()
