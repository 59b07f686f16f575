"""Settings are parsed strictly: a typo stops the start and names the variable."""

from __future__ import annotations

from dataclasses import replace

import pytest

from booking.settings import ENV_DEFAULTS, SettingsError, cookie_secure, load_settings


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


def test_a_bad_cookie_secure_value_names_the_variable() -> None:
    settings = load_settings(env={"SESSION_COOKIE_SECURE": "sometimes"})
    with pytest.raises(ValueError, match="SESSION_COOKIE_SECURE"):
        cookie_secure(settings, "SESSION_COOKIE_SECURE")
