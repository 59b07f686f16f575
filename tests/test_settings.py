"""Settings are parsed strictly: a typo stops the start and names the variable."""

from __future__ import annotations

import pytest

from booking.settings import ENV_DEFAULTS, SettingsError, load_settings


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
