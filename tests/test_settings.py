"""Settings are parsed strictly: a typo stops the start and names the variable."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from booking.settings import (
    ENV_DEFAULTS,
    SECRET_SETTINGS,
    SETTINGS,
    Settings,
    SettingsError,
    child_env,
    cookie_secure,
    load_settings,
)
from booking.settings_doc import DOC_PATH, reference_markdown


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("TRUE", True), (" yes ", True), ("on", True), ("0", False), ("False", False),
     ("no", False), ("OFF", False)],
)  # fmt: skip
def test_boolean_words(raw: str, expected: bool) -> None:
    assert load_settings(env={"ADMITTER_ENABLED": raw}).admitter_enabled is expected


@pytest.mark.parametrize(
    ("name", "raw"),
    [("ADMITTER_ENABLED", "ture"), ("SEAT_CACHE_INVALIDATE_ON_WRITE", ""),
     ("HOLD_SECONDS", "30s"), ("PORT", "8000.5"), ("SEAT_CACHE_TTL_SECONDS", "nan"),
     ("PAYMENT_FAILURE_RATE", "inf"), ("SWEEP_INTERVAL_SECONDS", "-1")],
)  # fmt: skip
def test_a_bad_value_stops_the_start_with_its_name(name: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(env={name: raw})


def test_defaults_parse_and_zero_sweep_interval_means_off() -> None:
    assert load_settings(env={}).sweep_interval_seconds == int(
        ENV_DEFAULTS["SWEEP_INTERVAL_SECONDS"]
    )
    assert load_settings(env={"SWEEP_INTERVAL_SECONDS": "0"}).sweep_interval_seconds == 0


@pytest.mark.parametrize("name", ["GATE_COOKIE_SECURE", "SESSION_COOKIE_SECURE"])
@pytest.mark.parametrize(
    ("raw", "app_env", "expected"),
    [
        ("auto", "development", False),
        ("auto", "production", True),
        ("1", "development", True),
        ("0", "production", False),
    ],
)
def test_cookie_secure_follows_app_env_unless_forced(
    name: str, raw: str, app_env: str, expected: bool
) -> None:
    # replace(): production's secret check is not what this test is about.
    settings = replace(load_settings(env={name: raw}), app_env=app_env)
    assert cookie_secure(settings, name) is expected


@pytest.mark.parametrize("raw", ["sometimes", "", "ture"])
@pytest.mark.parametrize("name", ["GATE_COOKIE_SECURE", "SESSION_COOKIE_SECURE"])
def test_a_bad_cookie_secure_value_stops_the_start_with_its_name(name: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(env={name: raw})


@pytest.mark.parametrize(
    ("name", "raw"),
    [("ADMITTER_ENABLED", "yes please"), ("SIGNIN_CODE_ECHO", "2"), ("REDIS_CLUSTER", "enabled"),
     ("SEAT_CACHE_INVALIDATE_ON_WRITE", "tru")],
)  # fmt: skip
def test_a_mistyped_boolean_is_refused_not_read_as_false(name: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=f"{name}=.*not a boolean"):
        load_settings(env={name: raw})


@pytest.mark.parametrize(
    ("name", "raw"),
    [("PAYMENT_FAILURE_RATE", "1.5"), ("PAYMENT_FAILURE_RATE", "-0.1"), ("PORT", "65536"),
     ("POW_DIFFICULTY", "33"), ("HOLD_SECONDS", "0"), ("SEAT_CACHE_TTL_JITTER", "1.0"),
     ("SEAT_CACHE_TTL_SECONDS", "0"), ("DB_POOL_MAX", "0"), ("MAX_BODY_BYTES", "-1"),
     ("POLL_LIMIT_PER_SECOND", "0"), ("PAYMENT_RETRY_INTERVALS", "1,-2"),
     ("LOG_LEVEL", "verbose"), ("APP_ENV", "staging")],
)  # fmt: skip
def test_an_out_of_range_value_stops_the_start_with_its_name(name: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(env={name: raw})


def test_range_ends_are_accepted() -> None:
    ends = {
        "PORT": "65535",
        "POW_DIFFICULTY": "0",
        "PAYMENT_FAILURE_RATE": "1",
        "HOLD_SECONDS": "1",
    }
    settings = load_settings(env=ends)
    assert (settings.port, settings.pow_difficulty) == (65535, 0)
    assert (settings.payment_failure_rate, settings.hold_seconds) == (1.0, 1)


def test_pool_minimum_above_its_maximum_is_refused() -> None:
    with pytest.raises(SettingsError, match="DB_POOL_MIN"):
        load_settings(env={"DB_POOL_MIN": "5", "DB_POOL_MAX": "4"})


def test_the_table_declares_every_field_once_with_a_doc() -> None:
    assert list(SETTINGS) == [f.name.upper() for f in fields(Settings)]
    assert {name: row.env.default for name, row in SETTINGS.items()} == ENV_DEFAULTS
    assert all(env.doc and "\n" not in env.doc for _, _, env in SETTINGS.values())
    assert set(SECRET_SETTINGS) == {
        "ADMIN_TOKEN", "ADMISSION_SECRET", "ADMISSION_SIGNING_KEYS", "SESSION_SECRET", "POW_SECRET"
    }  # fmt: skip


def test_child_env_refuses_an_unknown_or_bad_setting() -> None:
    assert child_env(WORKER_METRICS_PORT="9300")["WORKER_METRICS_PORT"] == "9300"
    with pytest.raises(SettingsError, match="WORKER_METRIC_PORT"):
        child_env(WORKER_METRIC_PORT="9300")
    with pytest.raises(SettingsError, match="WORKER_METRICS_PORT"):
        child_env(WORKER_METRICS_PORT="ninety")


def test_docs_settings_reference_is_generated_from_the_table() -> None:
    assert DOC_PATH.read_text() == reference_markdown(), "run: python -m booking.settings_doc"
