# syntax=docker/dockerfile:1
# One image for every role of the service, chosen by the command:
#   web (default)   uvicorn booking.asgi:app  (HOST/PORT from the environment)
#   worker          python -m workers.run     (RQ SimpleWorker + sweeper; metrics on :9200)
#   migrate + seed  python -m booking.run --prepare-only   (migrations only: python -m booking.db)
#   RQ dashboard    rq-dashboard --bind 0.0.0.0 --port 9181 --redis-url "$REDIS_URL"
# The waiting-room admitter runs inside every web process (ADMITTER_ENABLED=1; it is safe to run
# in N of them at once), so it has no role of its own.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: the runtime dependencies, from pyproject.toml, into a virtualenv -----------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY pyproject.toml ./
# [project].dependencies only: the dev extra (pytest, ruff, mypy, locust, ...) never gets in.
# six: rq-dashboard 0.9.0 imports it without declaring it.
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(deps))" > requirements.txt \
    && echo "six==1.17.0" >> requirements.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt

# --- runtime: the virtualenv, the source, templates and static files, as a non-root user -----
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Run from /app (PYTHONPATH): booking/app.py finds templates/ beside the booking package.
COPY booking ./booking
COPY eviction ./eviction
COPY waitingroom ./waitingroom
COPY workers ./workers
COPY templates ./templates
COPY static ./static
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    APP_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    WORKER_METRICS_HOST=0.0.0.0 \
    RQ_DASHBOARD_HOST=0.0.0.0
USER 10001:10001
EXPOSE 8000 9200 9181
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]
CMD ["sh", "-c", "exec uvicorn booking.asgi:app --host \"$HOST\" --port \"$PORT\" --no-proxy-headers --log-level \"${LOG_LEVEL:-info}\""]
