"""The one settings object, read only from environment variables.

Defaults work on the development machine: local PostgreSQL and Redis, port 8000. Values are parsed
strictly: a boolean is one of 1/0/true/false/yes/no/on/off, a number must parse (and be finite);
anything else stops the start with the variable's name (SettingsError). This module is the only
one that reads the process environment; the few places that must look at it or hand it on to
child processes call the helpers at the end.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import Any

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/ticketing"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

# Every environment variable the application reads, with its default.
# Dockerfile/compose static checks use this table, so keep it complete.
ENV_DEFAULTS: dict[str, str] = {
    "DATABASE_URL": DEFAULT_DATABASE_URL,
    "REDIS_URL": DEFAULT_REDIS_URL,
    "REDIS_MAX_CONNECTIONS": "200",
    "HOST": "127.0.0.1",
    "PORT": "8000",
    "DB_POOL_MIN": "2",
    "DB_POOL_MAX": "20",
    "HOLD_SECONDS": "300",
    "MAX_SEATS_PER_HOLD": "10",
    "SWEEP_INTERVAL_SECONDS": "30",  # 0 turns the overdue-hold sweep off; negative is refused
    "PAYMENT_RESCUE_SECONDS": "15",
    "RQ_QUEUE": "ticketing",
    "WORKERS": "2",
    "PAYMENT_LATENCY_MS": "200",
    "PAYMENT_FAILURE_RATE": "0.0",
    "ADMISSION_SECRET": "dev-only-admission-secret-change-me",
    "ADMIN_TOKEN": "dev-admin-token",
    "ADMITTER_ENABLED": "1",
    # swr: one load per expiry or hold while readers get the stale copy (within the bound);
    # docs/results/stampede.md has every strategy's loads and p99 (lock/xfetch/swr ranges overlap).
    "SEAT_CACHE_STRATEGY": "swr",
    "SEAT_CACHE_TTL_SECONDS": "2.0",
    "SEAT_CACHE_TTL_JITTER": "0.0",  # fraction of the TTL in [0, 1), only ever shortens it
    "SEAT_CACHE_STALE_BOUND_SECONDS": "4.0",  # > TTL: lock/xfetch/swr get a stale window
    "SEAT_CACHE_INVALIDATE_ON_WRITE": "1",
    "SEAT_CACHE_LOCK_TTL_MS": "5000",
    "SEAT_CACHE_XFETCH_BETA": "1.0",
    "SEAT_CACHE_EVICTION": "lru",
    "SEAT_CACHE_CAPACITY": "0",
    "SEAT_QUERY_DELAY_MS": "0",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "",
    "OTEL_SERVICE_NAME": "flashsale",
    "PROMETHEUS_MULTIPROC_DIR": "",
    "WORKER_METRICS_HOST": "127.0.0.1",
    "WORKER_METRICS_PORT": "9200",
    "RQ_DASHBOARD_HOST": "127.0.0.1",
    "RQ_DASHBOARD_PORT": "9181",
    "LOG_LEVEL": "info",
    "DEMO_SEATS": "300",
    "MAX_BODY_BYTES": "1048576",  # request bodies past this answer 413 while streaming; 0 = off
    "APP_ENV": "development",  # development | production (production refuses weak secrets)
    # Admission tokens (waitingroom/signing.py): `dev-only` = a development-only key derived from
    # ADMISSION_SECRET; production sets `kid=<seed>` entries (or a bare seed), the first signs.
    "ADMISSION_SIGNING_KEYS": "dev-only",
    "ADMISSION_RETIRED_KEYS": "",  # kid=<public key>@<epoch seconds>: accepted until then
    "ADMISSION_TOKEN_TTL_SECONDS": "60",
    "GATE_COOKIE_SECURE": "auto",  # gate cookies get `Secure`: auto = when APP_ENV=production
    # Browser sessions (docs/buyer-journey.md): the cookie's signing key, Secure flag and lifetime.
    "SESSION_SECRET": "dev-only-session-secret-change-me",
    "SESSION_COOKIE_SECURE": "auto",  # auto = Secure exactly when APP_ENV=production
    "SESSION_MAX_AGE_SECONDS": "2592000",
    # No mail is sent: with this on (development only) the sign-in code is logged and shown.
    "SIGNIN_CODE_ECHO": "1",
    "SIGNIN_CODE_TTL_SECONDS": "600",
    # How often the waiting page reloads itself when JavaScript is off.
    "WAITING_PAGE_REFRESH_SECONDS": "10",
    # A payment accepted with 202 keeps its hold until settled, at most this long after the request.
    "PAYMENT_PENDING_MAX_SECONDS": "120",
    "PAYMENT_CONCURRENCY": "16",  # payments one worker process settles at once
    "PAYMENT_RETRY_INTERVALS": "1,2,5",  # RQ retries of a failed payment job (seconds)
    "RQ_SWEEP_QUEUE": "",  # sweeps and expiries; empty: "<RQ_QUEUE>-sweeps"
    "EXPIRY_SWEEP_INTERVAL_SECONDS": "1",
    "PROVIDER_DATABASE_URL": "",  # the simulated provider's ledger; empty: DATABASE_URL
    # Bot defence (docs/bot-defence.md); 0 turns a limit off.
    "ACCOUNTS_PER_IP_PER_MINUTE": "30",
    "JOINS_PER_IP_PER_MINUTE": "60",
    "UNKNOWN_POLLS_PER_IP_PER_MINUTE": "30",
    "TRUSTED_PROXIES": "",  # comma-separated IPs/CIDRs whose X-Forwarded-For is believed
    "MAX_SEATS_PER_BUYER": "10",
    "POW_DIFFICULTY": "14",  # leading zero bits for new events (docs/results/powbench.md)
    "POW_SECRET": "dev-only-pow-secret-change-me",
    "POW_CHALLENGE_TTL_SECONDS": "120",
    "REDIS_CLUSTER": "0",  # 1: REDIS_URL names any node of a Redis Cluster
    "RQ_REDIS_URL": "",  # RQ's own single Redis (RQ is not cluster-aware); empty: REDIS_URL
    "REDIS_KEY_PREFIX": "",  # isolates deployments sharing one cluster (it has only db 0)
    "WEB_CONCURRENCY": "0",  # web processes of `make run`; 0 = one per CPU
    "ROOM_CACHE_SECONDS": "1.0",  # bound on a process's stale event/room config
    "AUTH_CACHE_SECONDS": "60.0",  # bound on a revoked bearer token still accepted (0 = off)
    "QUEUE_SNAPSHOT_SECONDS": "0.25",  # queue-head snapshot refresh (poll from memory)
    "QUEUE_SNAPSHOT_MAX_AGE_SECONDS": "1.0",  # a position is exact as of at most this ago
    "POLL_LIMIT_PER_SECOND": "2",  # queue polls per ticket per second (then 429)
}


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    redis_max_connections: int
    host: str
    port: int
    db_pool_min: int
    db_pool_max: int
    hold_seconds: int
    max_seats_per_hold: int
    sweep_interval_seconds: int
    payment_rescue_seconds: int
    rq_queue: str
    workers: int
    payment_latency_ms: int
    payment_failure_rate: float
    admission_secret: str
    admin_token: str
    admitter_enabled: bool
    seat_cache_strategy: str
    seat_cache_ttl_seconds: float
    seat_cache_ttl_jitter: float
    seat_cache_stale_bound_seconds: float
    seat_cache_invalidate_on_write: bool
    seat_cache_lock_ttl_ms: int
    seat_cache_xfetch_beta: float
    seat_cache_eviction: str
    seat_cache_capacity: int
    seat_query_delay_ms: int
    otel_exporter_otlp_endpoint: str
    otel_service_name: str
    prometheus_multiproc_dir: str
    worker_metrics_host: str
    worker_metrics_port: int
    rq_dashboard_host: str
    rq_dashboard_port: int
    log_level: str
    demo_seats: int
    max_body_bytes: int
    app_env: str
    admission_signing_keys: str
    admission_retired_keys: str
    admission_token_ttl_seconds: int
    gate_cookie_secure: str
    session_secret: str
    session_cookie_secure: str
    session_max_age_seconds: int
    signin_code_echo: bool
    signin_code_ttl_seconds: int
    waiting_page_refresh_seconds: int
    payment_pending_max_seconds: int
    payment_concurrency: int
    payment_retry_intervals: str
    rq_sweep_queue: str
    expiry_sweep_interval_seconds: float
    provider_database_url: str
    accounts_per_ip_per_minute: int
    joins_per_ip_per_minute: int
    unknown_polls_per_ip_per_minute: int
    trusted_proxies: str
    max_seats_per_buyer: int
    pow_difficulty: int
    pow_secret: str
    pow_challenge_ttl_seconds: int
    redis_cluster: bool
    rq_redis_url: str
    redis_key_prefix: str

    web_concurrency: int
    room_cache_seconds: float
    auth_cache_seconds: float
    queue_snapshot_seconds: float
    queue_snapshot_max_age_seconds: float
    poll_limit_per_second: int


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class SettingsError(ValueError):
    """A variable that does not parse: the message names it, and the process does not start."""


def _convert(raw: str, kind: Any) -> Any:
    """Parse `raw` as `kind` (the field's type or its name); ValueError if it does not parse."""
    if kind in (bool, "bool"):
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError(f"not a boolean (one of {'/'.join(sorted(TRUE_WORDS | FALSE_WORDS))})")
    if kind in (int, "int"):
        return int(raw)
    if kind in (float, "float"):
        value = float(raw)
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return value
    return raw


def load_settings(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from `env` (default: os.environ); keyword overrides win (tests use them)."""
    source = os.environ if env is None else env
    values: dict[str, Any] = {}
    for f in fields(Settings):
        name = f.name.upper()
        raw = source.get(name, ENV_DEFAULTS[name])
        try:
            values[f.name] = _convert(raw, f.type)
        except ValueError as exc:
            raise SettingsError(
                f"environment variable {name}={raw!r} is not a valid {f.type}: {exc}"
            ) from exc
    values.update(overrides)
    if values["sweep_interval_seconds"] < 0:
        raise SettingsError(
            f"environment variable SWEEP_INTERVAL_SECONDS={values['sweep_interval_seconds']!r}"
            " must be >= 0 (0 turns the overdue-hold sweep off)"
        )
    settings = Settings(**values)
    check_app_env(settings)
    return settings


APP_ENVS = ("development", "production")

# Every secret the service signs or authenticates with, and its minimum length in production.
# A new secret (an HMAC key, a signing key) is one line here; production then refuses its
# development default, .env.example's placeholder, and anything short or repetitive.
SECRET_SETTINGS: dict[str, int] = {
    "ADMIN_TOKEN": 32,
    "ADMISSION_SECRET": 32,
    "ADMISSION_SIGNING_KEYS": 43,  # a 43-char base64url seed, kid=seed entries: longer
    "SESSION_SECRET": 32,
    "POW_SECRET": 32,  # HMAC key of the join's proof-of-work challenges (waitingroom/pow.py)
}
PLACEHOLDER_MARKERS = ("change-me", "changeme", "example", "placeholder")
MIN_DISTINCT_CHARACTERS = 10


class InsecureSettings(ValueError):
    """APP_ENV=production with a secret that is a default, a placeholder or too weak."""


def secret_problem(name: str, value: str, min_length: int) -> str | None:
    """Why `value` is not a production secret, or None. Never repeats the value."""
    if value == ENV_DEFAULTS.get(name):
        return f"{name} is the development default"
    if any(marker in value.lower() for marker in PLACEHOLDER_MARKERS):
        return f"{name} is a placeholder (see .env.example): generate a random value"
    if len(value) < min_length:
        return f"{name} is shorter than {min_length} characters"
    if len(set(value)) < MIN_DISTINCT_CHARACTERS:
        return f"{name} has fewer than {MIN_DISTINCT_CHARACTERS} distinct characters"
    return None


def check_app_env(settings: Settings) -> None:
    """APP_ENV is exactly one of APP_ENVS; production refuses to start with weak secrets."""
    if settings.app_env not in APP_ENVS:
        raise ValueError(
            f"environment variable APP_ENV={settings.app_env!r} is not one of {APP_ENVS}"
        )
    if settings.app_env != "production":
        return
    problems = [
        problem
        for name, min_length in SECRET_SETTINGS.items()
        if (problem := secret_problem(name, str(getattr(settings, name.lower())), min_length))
    ]
    if problems:
        raise InsecureSettings(
            "APP_ENV=production refuses to start: "
            + "; ".join(problems)
            + " (generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )


def cookie_secure(settings: Settings, name: str) -> bool:
    """A cookie's Secure flag from setting `name` (GATE_/SESSION_COOKIE_SECURE): 1/0 force it;
    `auto` means Secure exactly in production (behind HTTPS)."""
    value = str(getattr(settings, name.lower())).strip().lower()
    if value == "auto":
        return settings.app_env == "production"
    if value in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return value in ("1", "true", "yes", "on")
    raise ValueError(f"environment variable {name}={value!r} is not auto, 1 or 0")


def gate_cookie_secure(settings: Settings) -> bool:
    return cookie_secure(settings, "GATE_COOKIE_SECURE")


def session_cookie_secure(settings: Settings) -> bool:
    return cookie_secure(settings, "SESSION_COOKIE_SECURE")


# --- the process environment, for the few places that must look at it or pass it on ----------


def multiprocess_metrics_dir() -> str:
    """PROMETHEUS_MULTIPROC_DIR as it is now (prometheus_client reads it at import time too)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", ENV_DEFAULTS["PROMETHEUS_MULTIPROC_DIR"])


def leave_multiprocess_metrics() -> None:
    """Forget PROMETHEUS_MULTIPROC_DIR in this process (a worker serves its own registry)."""
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.pop("prometheus_multiproc_dir", None)


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment plus `extra`, for a child process (web, worker, dashboard)."""
    return {**os.environ, **extra}


def library_default(name: str, value: str) -> None:
    """Set a third-party library's variable unless the operator already did."""
    os.environ.setdefault(name, value)
