"""The one settings object, read only from environment variables.

Each setting is declared once, as a field of `Settings`: its type, and in `Env(...)` its default
(the string the environment would hold), its parser, a one-line doc and, for a secret, the
minimum length production demands. `ENV_DEFAULTS`, `SECRET_SETTINGS`, `child_env` and the
reference in docs/settings.md are all derived from those fields.

Defaults work on the development machine: local PostgreSQL and Redis, port 8000. Values are parsed
strictly: a boolean is one of 1/0/true/false/yes/no/on/off, a number must parse, be finite and lie
in its range; anything else stops the start with the variable's name (SettingsError). This module
is the only one that reads the process environment; the few places that must look at it or hand
it on to child processes call the helpers at the end.

Adding a setting is one field in `Settings`:

    my_limit_seconds: Annotated[float, Env("2.5", Number(low=0), "what it bounds, in one line")]
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Annotated, Any, NamedTuple, Protocol, get_args, get_origin, get_type_hints

from waitingroom.pow import MAX_DIFFICULTY

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/ticketing"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
BOOLEAN_WORDS = "/".join(sorted(TRUE_WORDS | FALSE_WORDS))
APP_ENVS = ("development", "production")


class SettingsError(ValueError):
    """A variable that does not parse: the message names it, and the process does not start."""


# --- parsers: str -> value, ValueError (saying why) if the text is not one --------------------


class Parser(Protocol):
    """Turns a variable's text into its value; `accepts` says what it takes (for the docs)."""

    @property
    def accepts(self) -> str: ...

    def __call__(self, raw: str) -> Any: ...


@dataclass(frozen=True)
class Text:
    accepts: str = "text"

    def __call__(self, raw: str) -> str:
        return raw


@dataclass(frozen=True)
class Boolean:
    accepts: str = f"boolean ({BOOLEAN_WORDS})"

    def __call__(self, raw: str) -> bool:
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError(f"not a boolean (one of {BOOLEAN_WORDS})")


def _bounds(low: float | None, high: float | None, above: float | None, below: float | None) -> str:
    lower = f"{low} <= " if low is not None else f"{above} < " if above is not None else ""
    upper = f" <= {high}" if high is not None else f" < {below}" if below is not None else ""
    return f"{lower}x{upper}" if lower or upper else ""


@dataclass(frozen=True)
class Integer:
    """A whole number in [low, high] (an end left None is open)."""

    low: int | None = None
    high: int | None = None

    @property
    def accepts(self) -> str:
        bounds = _bounds(self.low, self.high, None, None)
        return f"integer, {bounds}" if bounds else "integer"

    def __call__(self, raw: str) -> int:
        value = int(raw)
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            raise ValueError(f"out of range: {self.accepts}")
        return value


@dataclass(frozen=True)
class Number:
    """A finite float in [low, high]; `above`/`below` bound it with the end excluded."""

    low: float | None = None
    high: float | None = None
    above: float | None = None
    below: float | None = None

    @property
    def accepts(self) -> str:
        bounds = _bounds(self.low, self.high, self.above, self.below)
        return f"number, {bounds}" if bounds else "number"

    def __call__(self, raw: str) -> float:
        value = float(raw)
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        if (
            (self.low is not None and value < self.low)
            or (self.high is not None and value > self.high)
            or (self.above is not None and value <= self.above)
            or (self.below is not None and value >= self.below)
        ):
            raise ValueError(f"out of range: {self.accepts}")
        return value


@dataclass(frozen=True)
class OneOf:
    """Exactly one of `words` (case and spaces matter: APP_ENV=Production is a typo)."""

    words: tuple[str, ...]

    @property
    def accepts(self) -> str:
        return " / ".join(self.words)

    def __call__(self, raw: str) -> str:
        if raw not in self.words:
            raise ValueError(f"not one of {', '.join(self.words)}")
        return raw


@dataclass(frozen=True)
class AutoOrBoolean:
    """`auto`, or a boolean word; kept as (lower-case) text: cookie_secure() decides on auto."""

    accepts: str = "auto or a boolean"

    def __call__(self, raw: str) -> str:
        word = raw.strip().lower()
        if word != "auto" and word not in TRUE_WORDS | FALSE_WORDS:
            raise ValueError(f"not auto or a boolean ({BOOLEAN_WORDS})")
        return word


@dataclass(frozen=True)
class WholeNumbers:
    """Comma-separated whole numbers >= 0 ("1,2,5"; "" for none), kept as text."""

    accepts: str = "comma-separated integers >= 0"

    def __call__(self, raw: str) -> str:
        for part in raw.split(","):
            if part.strip() and int(part) < 0:
                raise ValueError(f"{part.strip()} is negative")
        return raw


text = Text()
boolean = Boolean()
auto_or_boolean = AutoOrBoolean()
whole_numbers = WholeNumbers()


def one_of(*words: str) -> OneOf:
    return OneOf(words)


@dataclass(frozen=True)
class Env:
    """How one Settings field comes from its environment variable (the field's name, upper)."""

    default: str  # what an unset variable reads as
    parse: Parser
    doc: str  # one line, for docs/settings.md
    secret_min_length: int = 0  # > 0: a secret; production refuses the default and weak values


SECONDS = Integer(low=1)
PER_MINUTE = Integer(low=0)  # 0 turns the limit off
PORT = Integer(low=0, high=65535)  # 0: the OS picks one (or the listener is off)
POSITIVE_SECONDS = Number(above=0)  # a period or a lifetime: 0 would spin or expire at once


@dataclass(frozen=True)
class Settings:
    database_url: Annotated[str, Env(DEFAULT_DATABASE_URL, text, "PostgreSQL of the service")]
    redis_url: Annotated[
        str, Env(DEFAULT_REDIS_URL, text, "Redis of the waiting room, caches and throttles")
    ]
    redis_max_connections: Annotated[
        int, Env("200", Integer(low=1), "connections of a process's Redis pool")
    ]
    host: Annotated[str, Env("127.0.0.1", text, "address `make run` serves on")]
    port: Annotated[int, Env("8000", PORT, "port `make run` serves on")]
    db_pool_min: Annotated[int, Env("2", Integer(low=0), "PostgreSQL connections kept open")]
    db_pool_max: Annotated[
        int, Env("20", Integer(low=1), "PostgreSQL connections per process, at most")
    ]
    hold_seconds: Annotated[int, Env("300", SECONDS, "how long a hold keeps its seats")]
    max_seats_per_hold: Annotated[int, Env("10", Integer(low=1), "seats one hold may take")]
    sweep_interval_seconds: Annotated[
        int, Env("30", Integer(low=0), "full overdue-hold sweep period; 0 turns it off")
    ]
    payment_rescue_seconds: Annotated[
        int, Env("15", Integer(low=0), "a payment unsettled this long is re-enqueued")
    ]
    rq_queue: Annotated[str, Env("ticketing", text, "RQ queue of payment jobs")]
    workers: Annotated[int, Env("2", Integer(low=0), "worker processes of `make run`")]
    payment_latency_ms: Annotated[
        int, Env("200", Integer(low=0), "the simulated provider's latency per payment")
    ]
    payment_failure_rate: Annotated[
        float, Env("0.0", Number(low=0, high=1), "share of payments the provider declines")
    ]
    admission_secret: Annotated[
        str,
        Env(
            "dev-only-admission-secret-change-me",
            text,
            "seed of the development signing key",
            secret_min_length=32,
        ),
    ]
    admin_token: Annotated[
        str,
        Env(
            "dev-admin-token",
            text,
            "bootstrap operator token (operators get their own)",
            secret_min_length=32,
        ),
    ]
    admitter_enabled: Annotated[
        bool, Env("1", boolean, "this process runs the waiting room's admitter")
    ]
    # swr: one load per expiry or hold while readers get the stale copy (within the bound);
    # docs/results/stampede.md has every strategy's loads and p99 (lock/xfetch/swr ranges overlap).
    seat_cache_strategy: Annotated[
        str, Env("swr", text, "seat-map cache: none/ttl/lock/singleflight/xfetch/xfetch-pure/swr")
    ]
    seat_cache_ttl_seconds: Annotated[
        float, Env("2.0", POSITIVE_SECONDS, "seat-map freshness before a reload")
    ]
    seat_cache_ttl_jitter: Annotated[
        float, Env("0.0", Number(low=0, below=1), "fraction of the TTL taken off at random")
    ]
    seat_cache_stale_bound_seconds: Annotated[
        float,
        Env("4.0", Number(low=0), "oldest seat map ever served (> TTL: a stale window)"),
    ]
    seat_cache_invalidate_on_write: Annotated[
        bool, Env("1", boolean, "a hold or cancel drops the event's seat map")
    ]
    seat_cache_lock_ttl_ms: Annotated[
        int, Env("5000", Integer(low=1), "lifetime of the lock strategy's reload lock")
    ]
    seat_cache_xfetch_beta: Annotated[
        float, Env("1.0", Number(low=0), "xfetch's eagerness to reload early")
    ]
    seat_cache_eviction: Annotated[
        str, Env("lru", text, "eviction policy of the in-process tier (eviction/)")
    ]
    seat_cache_capacity: Annotated[
        int, Env("0", Integer(low=0), "entries of the in-process tier; 0 turns it off")
    ]
    seat_query_delay_ms: Annotated[
        int, Env("0", Integer(low=0), "added to each seat-map query (experiments)")
    ]
    otel_exporter_otlp_endpoint: Annotated[
        str, Env("", text, "OTLP endpoint of traces; empty turns tracing off")
    ]
    otel_service_name: Annotated[str, Env("flashsale", text, "service name in traces")]
    prometheus_multiproc_dir: Annotated[
        str, Env("", text, "shared metrics folder of several web processes")
    ]
    worker_metrics_host: Annotated[str, Env("127.0.0.1", text, "address of workers' metrics")]
    worker_metrics_port: Annotated[
        int, Env("9200", PORT, "first worker's metrics port (+1 per worker); 0 = off")
    ]
    rq_dashboard_host: Annotated[str, Env("127.0.0.1", text, "address of the RQ dashboard")]
    rq_dashboard_port: Annotated[int, Env("9181", PORT, "port of the RQ dashboard")]
    log_level: Annotated[
        str,
        Env("info", one_of("critical", "error", "warning", "info", "debug"), "log level"),
    ]
    demo_seats: Annotated[int, Env("300", Integer(low=1), "seats of the seeded demo event")]
    max_body_bytes: Annotated[
        int, Env("1048576", Integer(low=0), "larger request bodies get 413; 0 = no limit")
    ]
    app_env: Annotated[
        str,
        Env("development", one_of(*APP_ENVS), "production refuses development secrets"),
    ]
    # Admission tokens (waitingroom/signing.py): `dev-only` = a development-only key derived from
    # ADMISSION_SECRET; production sets `kid=<seed>` entries (or a bare seed), the first signs.
    admission_signing_keys: Annotated[
        str,
        Env(
            "dev-only",
            text,
            "Ed25519 seeds kid=<seed>,... (the first signs); dev-only: from ADMISSION_SECRET",
            secret_min_length=43,  # a 43-char base64url seed, kid=seed entries: longer
        ),
    ]
    admission_retired_keys: Annotated[
        str, Env("", text, "kid=<public key>@<epoch seconds>: accepted until then")
    ]
    admission_token_ttl_seconds: Annotated[
        int, Env("60", SECONDS, "lifetime of one admission token")
    ]
    gate_cookie_secure: Annotated[
        str, Env("auto", auto_or_boolean, "gate cookies get Secure; auto = in production")
    ]
    session_secret: Annotated[
        str,
        Env(
            "dev-only-session-secret-change-me",
            text,
            "signing key of the session cookie and of bearer-token tags",
            secret_min_length=32,
        ),
    ]
    session_cookie_secure: Annotated[
        str, Env("auto", auto_or_boolean, "session cookie gets Secure; auto = in production")
    ]
    session_max_age_seconds: Annotated[
        int, Env("2592000", SECONDS, "lifetime of a browser session")
    ]
    signin_code_echo: Annotated[
        bool, Env("1", boolean, "log and show the sign-in code (no mail is sent)")
    ]
    signin_code_ttl_seconds: Annotated[int, Env("600", SECONDS, "lifetime of a sign-in code")]
    waiting_page_refresh_seconds: Annotated[
        int, Env("10", SECONDS, "the waiting page's reload period without JavaScript")
    ]
    payment_pending_max_seconds: Annotated[
        int, Env("120", SECONDS, "a 202-accepted payment keeps its hold this long at most")
    ]
    payment_concurrency: Annotated[
        int,
        Env(
            "16",
            Integer(low=1),
            "charges one worker process has at the provider at once (it runs N + min(N, 32)"
            " RQ threads so bookkeeping overlaps the charges)",
        ),
    ]
    payment_retry_intervals: Annotated[
        str, Env("1,2,5", whole_numbers, "RQ retries of a failed payment job (seconds)")
    ]
    rq_sweep_queue: Annotated[
        str, Env("", text, "queue of sweeps and expiries; empty: <RQ_QUEUE>-sweeps")
    ]
    expiry_sweep_interval_seconds: Annotated[
        float, Env("1", POSITIVE_SECONDS, "period of the due-expiry sweep")
    ]
    provider_database_url: Annotated[
        str, Env("", text, "the simulated provider's ledger; empty: DATABASE_URL")
    ]
    # Bot defence (docs/bot-defence.md); 0 turns a limit off.
    accounts_per_ip_per_minute: Annotated[
        int, Env("30", PER_MINUTE, "accounts one address may create a minute; 0 = off")
    ]
    joins_per_ip_per_minute: Annotated[
        int, Env("60", PER_MINUTE, "queue joins of one address a minute; 0 = off")
    ]
    unknown_polls_per_ip_per_minute: Annotated[
        int, Env("30", PER_MINUTE, "polls of unknown tickets of one address a minute; 0 = off")
    ]
    trusted_proxies: Annotated[
        str, Env("", text, "IPs/CIDRs whose X-Forwarded-For is believed (comma-separated)")
    ]
    max_seats_per_buyer: Annotated[
        int, Env("10", Integer(low=0), "seats one buyer may hold or own per event; 0 = no cap")
    ]
    pow_difficulty: Annotated[
        int,
        Env(
            "14",
            Integer(low=0, high=MAX_DIFFICULTY),
            "proof-of-work bits of new events (docs/results/powbench.md)",
        ),
    ]
    pow_secret: Annotated[
        str,
        Env(
            "dev-only-pow-secret-change-me",
            text,
            "HMAC key of proof-of-work challenges (waitingroom/pow.py)",
            secret_min_length=32,
        ),
    ]
    pow_challenge_ttl_seconds: Annotated[
        int, Env("120", SECONDS, "lifetime of a proof-of-work challenge")
    ]
    redis_cluster: Annotated[bool, Env("0", boolean, "REDIS_URL names any node of a Redis Cluster")]
    rq_redis_url: Annotated[
        str, Env("", text, "RQ's own single Redis (RQ is not cluster-aware); empty: REDIS_URL")
    ]
    redis_key_prefix: Annotated[
        str, Env("", text, "isolates deployments sharing one cluster (it has only db 0)")
    ]
    web_concurrency: Annotated[
        int, Env("0", Integer(low=0), "web processes of `make run`; 0 = one per CPU")
    ]
    room_cache_seconds: Annotated[
        float, Env("1.0", Number(low=0), "bound on a process's stale event/room config")
    ]
    auth_cache_seconds: Annotated[
        float, Env("60.0", Number(low=0), "bound on a revoked bearer token still accepted; 0 = off")
    ]
    auth_revocation_seconds: Annotated[
        float,
        Env(
            "5.0",
            Number(low=0),
            "bound on a revoked tagged token still accepted; 0 = tags vouch only while fresh",
        ),
    ]
    queue_snapshot_seconds: Annotated[
        float, Env("0.25", POSITIVE_SECONDS, "queue-head snapshot refresh (polls read memory)")
    ]
    queue_snapshot_max_age_seconds: Annotated[
        float, Env("1.0", POSITIVE_SECONDS, "a position is exact as of at most this ago")
    ]
    poll_limit_per_second: Annotated[
        int, Env("2", Integer(low=1), "queue polls per ticket per second (then 429)")
    ]


class Declared(NamedTuple):
    """One row of the table: the Settings field, its type, and how its variable is read."""

    field: str
    kind: type
    env: Env


def _setting_table() -> dict[str, Declared]:
    """{VARIABLE: Declared}, checked once at import: every field declares an Env whose default
    parses to the field's type."""
    hints = get_type_hints(Settings, include_extras=True)
    table: dict[str, Declared] = {}
    for f in fields(Settings):
        hint = hints[f.name]
        if get_origin(hint) is not Annotated:
            raise TypeError(f"Settings.{f.name} has no Env(...): declare its variable")
        kind, *extras = get_args(hint)
        env = next((extra for extra in extras if isinstance(extra, Env)), None)
        if env is None:
            raise TypeError(f"Settings.{f.name} has no Env(...): declare its variable")
        default = env.parse(env.default)
        if type(default) is not kind:
            raise TypeError(f"Settings.{f.name}: default {env.default!r} is not a {kind}")
        table[f.name.upper()] = Declared(f.name, kind, env)
    return table


SETTINGS: dict[str, Declared] = _setting_table()

# Every environment variable the application reads, with its default (derived: declare new ones
# in Settings). Dockerfile/compose static checks use it.
ENV_DEFAULTS: dict[str, str] = {name: row.env.default for name, row in SETTINGS.items()}

# Every secret the service signs or authenticates with, and its minimum length in production
# (derived from Env(secret_min_length=...)): production refuses its development default,
# .env.example's placeholder, and anything short or repetitive.
SECRET_SETTINGS: dict[str, int] = {
    name: row.env.secret_min_length for name, row in SETTINGS.items() if row.env.secret_min_length
}


def parse_setting(name: str, raw: str) -> Any:
    """VARIABLE's value from its text; SettingsError naming it if it does not parse."""
    if name not in SETTINGS:
        raise SettingsError(f"{name} is not a setting (booking/settings.py declares them)")
    env = SETTINGS[name].env
    try:
        return env.parse(raw)
    except ValueError as exc:
        raise SettingsError(f"environment variable {name}={raw!r} is refused: {exc}") from exc


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from `env` (default: os.environ); keyword overrides win (tests use them)."""
    source = os.environ if env is None else env
    values: dict[str, Any] = {
        row.field: parse_setting(name, source.get(name, row.env.default))
        for name, row in SETTINGS.items()
    }
    values.update(overrides)
    if values["db_pool_min"] > values["db_pool_max"]:
        raise SettingsError(
            f"environment variable DB_POOL_MIN={values['db_pool_min']} must be <= "
            f"DB_POOL_MAX={values['db_pool_max']}"
        )
    settings = Settings(**values)
    check_app_env(settings)
    return settings


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
    """This process's environment plus `extra`, for a child process (web, worker, dashboard).
    Each name in `extra` must be a declared setting and its value must parse: a typo fails here,
    in the parent, not in a child that would read the default instead."""
    for name, raw in extra.items():
        parse_setting(name, raw)
    return {**os.environ, **extra}


def library_default(name: str, value: str) -> None:
    """Set a third-party library's variable unless the operator already did."""
    os.environ.setdefault(name, value)
