"""Stampede experiment arithmetic: expiry episodes, loads charged to them, /metrics parsing."""

from __future__ import annotations

import pytest

from load.stampede.analysis import expiry_moments, load_events, loads_per_expiry, summarize
from load.stampede.workload import Hold, Read, RunData, Sample, parse_counters


def _reads(pattern: list[tuple[float, str]]) -> list[Read]:
    return [Read(t, 0.01 if src == "hit" else 0.3, 200, src, 100.0) for t, src in pattern]


def _samples(points: list[tuple[float, float]]) -> list[Sample]:
    return [Sample(t, {"loads": n, "hits": 0.0}) for t, n in points]


def test_episodes_and_loads_per_expiry() -> None:
    reads = _reads(
        [(1.0, "hit"), (2.0, "load"), (2.1, "miss"), (2.2, "hit"), (3.0, "hit"), (4.2, "stale")]
    )
    assert expiry_moments(reads) == [2.0, 4.2]
    data = RunData("lock", reads, _samples([(1.9, 0), (2.05, 3), (2.25, 4), (4.3, 5)]))
    assert load_events(data) == [(2.05, 3), (2.25, 1), (4.3, 1)]
    assert loads_per_expiry([2.0, 4.2], load_events(data)) == [4, 1]
    s = summarize(data, "reads", duration=5.0, ttl=2.0)
    assert (s.expiries, s.loads, s.loads_per_expiry_max) == (2, 5, 4)
    assert s.loads_per_expiry_mean == pytest.approx(2.5)
    assert s.p99_at_expiry == pytest.approx(0.3)  # only the non-hit reads are near an expiry
    assert s.stale_reads == 1


def test_holds_count_as_refresh_moments() -> None:
    reads = _reads([(1.0, "hit"), (2.0, "stale"), (2.1, "stale")])
    holds = [Hold(2.5, 0.1, 201, 0.2), Hold(3.0, 0.1, 409, None)]
    data = RunData("swr", reads, _samples([(1.9, 0), (2.05, 1), (2.7, 2)]), holds)
    s = summarize(data, "holds", duration=4.0, ttl=2.0)
    assert (s.expiries, s.loads_per_expiry_max, s.holds) == (2, 1, 1)


def test_none_counts_loads_per_ttl_window() -> None:
    reads = _reads([(0.5, "load"), (2.5, "load")])
    data = RunData("none", reads, _samples([(0.0, 0), (0.6, 10), (2.6, 30)]))
    s = summarize(data, "reads", duration=4.0, ttl=2.0)
    assert (s.expiries, s.loads_per_expiry_max, s.loads_per_expiry_mean) == (0, 20, 15.0)


def test_parse_counters_picks_the_strategy() -> None:
    text = (
        "# HELP seat_cache_loads_total x\n"
        'seat_cache_loads_total{strategy="ttl"} 12.0\n'
        'seat_cache_loads_total{strategy="lock"} 3.0\n'
        'seat_cache_stale_served_total{strategy="lock"} 7.0\n'
    )
    got = parse_counters(text, "lock")
    assert got["loads"] == 3.0 and got["stale_served"] == 7.0 and got["hits"] == 0.0


def test_refresh_ahead_without_visible_expiries_counts_load_episodes() -> None:
    # Every read is a hit (xfetch refreshed in the background): the loads form the moments.
    reads = _reads([(t / 10, "hit") for t in range(60)])
    samples = _samples([(1.0, 0), (1.95, 1), (2.0, 1), (3.95, 2), (4.0, 4), (4.05, 4)])
    s = summarize(RunData("xfetch", reads, samples), "reads", duration=6.0, ttl=2.0)
    assert (s.expiries, s.loads, s.loads_per_expiry_max) == (2, 4, 3)
    assert s.loads_per_expiry_mean == pytest.approx(2.0)
