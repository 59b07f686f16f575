"""APP_ENV=production refuses to start with a default, placeholder or short secret and names it;
development (the default, what `make run` uses) starts with no configuration at all."""

from __future__ import annotations

import secrets
import subprocess
import sys

import pytest

from booking.settings import (
    ENV_DEFAULTS,
    SECRET_SETTINGS,
    InsecureSettings,
    SettingsError,
    load_settings,
)
from tests.conftest import ROOT, free_port, service_env, start_server, stop
from tests.test_ops_compose import app_services, compose, environment


def strong_secrets() -> dict[str, str]:
    return {name: secrets.token_urlsafe(32) for name in SECRET_SETTINGS}


def test_development_is_the_default_and_accepts_development_secrets() -> None:
    settings = load_settings(env={})
    assert settings.app_env == "development"
    assert settings.admin_token == ENV_DEFAULTS["ADMIN_TOKEN"]


def test_production_accepts_strong_secrets() -> None:
    assert load_settings(env={"APP_ENV": "production", **strong_secrets()}).app_env == "production"


@pytest.mark.parametrize("name", sorted(SECRET_SETTINGS))
@pytest.mark.parametrize(
    ("weak", "why"),
    [
        (None, "development default"),
        ("change-me-to-32-random-bytes-please-do", "placeholder"),
        ("Short-but-random-7fQ", "shorter than"),
        ("ab" * 40, "distinct characters"),
    ],
)
def test_production_refuses_each_weak_secret_and_names_it(
    name: str, weak: str | None, why: str
) -> None:
    env = {"APP_ENV": "production", **strong_secrets()}
    env[name] = ENV_DEFAULTS[name] if weak is None else weak
    with pytest.raises(InsecureSettings) as caught:
        load_settings(env=env)
    message = str(caught.value)
    assert name in message and why in message
    assert env[name] not in message  # the secret itself is never printed
    assert all(other not in message for other in SECRET_SETTINGS if other != name)


@pytest.mark.parametrize("value", ["Production", "prod", "", "production "])
def test_app_env_is_parsed_strictly(value: str) -> None:
    with pytest.raises(ValueError, match="APP_ENV"):
        load_settings(env={"APP_ENV": value, **strong_secrets()})


@pytest.mark.parametrize(
    ("name", "raw"),
    [("SIGNIN_CODE_ECHO", "ture"), ("SESSION_COOKIE_SECURE", "yes please"),
     ("POW_DIFFICULTY", "40"), ("PAYMENT_FAILURE_RATE", "2")],
)  # fmt: skip
def test_production_refuses_a_mistyped_or_out_of_range_value_by_name(name: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(env={"APP_ENV": "production", **strong_secrets(), name: raw})


def test_compose_with_env_example_placeholders_is_refused() -> None:
    """`cp .env.example .env && docker compose up` without editing the secrets must not run."""
    for name, service in app_services(compose()).items():
        env = environment(service)
        if "ADMIN_TOKEN" not in env:
            continue  # rq-dashboard holds no secret
        assert env["APP_ENV"] == "production", name
        with pytest.raises(InsecureSettings) as caught:
            load_settings(env=env)
        assert all(secret in str(caught.value) for secret in SECRET_SETTINGS), name


def test_image_runs_in_production_and_trusts_no_forwarded_header() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "APP_ENV=production" in dockerfile
    assert "--forwarded-allow-ips" not in dockerfile and "--no-proxy-headers" in dockerfile


def test_production_server_refuses_to_start_with_default_admin_token(database_url: str) -> None:
    env = service_env(APP_ENV="production", ADMISSION_SECRET=secrets.token_urlsafe(32))
    env["ADMIN_TOKEN"] = ENV_DEFAULTS["ADMIN_TOKEN"]
    port = free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "uvicorn", "booking.asgi:app", "--port", str(port)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert b"ADMIN_TOKEN is the development default" in proc.stderr
    assert b"ADMISSION_SECRET" not in proc.stderr.split(b"InsecureSettings")[-1]


def test_production_server_starts_with_strong_secrets(database_url: str, redis_url: str) -> None:
    proc = start_server(free_port(), APP_ENV="production", **strong_secrets())
    stop(proc)


def test_server_refuses_to_start_with_a_mistyped_boolean(database_url: str) -> None:
    env = service_env(APP_ENV="production", **strong_secrets(), SIGNIN_CODE_ECHO="ture")
    proc = subprocess.run(
        [sys.executable, "-m", "uvicorn", "booking.asgi:app", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert b"SIGNIN_CODE_ECHO='ture' is refused: not a boolean" in proc.stderr
