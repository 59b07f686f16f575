"""From one run's raw data to the figures the report quotes.

Expiry episodes: the cache stops being fresh at an expiry; readers then get something other
than a fresh hit (X-Cache miss/load/stale) until a new value is stored. Non-hit reads closer
than EPISODE_GAP seconds apart form one episode; its start is the expiry moment. In the holds
variant each hold's invalidation is such a moment too, and the first non-hit read it causes
(1-20 ms later) is the same moment, not a second one: moments closer than EPISODE_GAP are merged,
so loads per moment is loads per invalidation or expiry. Database loads (the server's
seat_cache_loads_total, sampled every 50 ms) are charged to the latest moment before them.
`none` has no cache and so no expiries: its loads are reported per TTL-long window instead.
A strategy whose readers never see the cache go stale (`xfetch` refreshing ahead of expiry in
the background) has no expiry moments either: each recomputation episode (loads closer than
EPISODE_GAP) is its moment instead, so loads per moment still says how many readers recompute.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from load.stampede.workload import SAMPLE_INTERVAL, Read, RunData

EPISODE_GAP = 0.25
EXPIRY_WINDOW = (-0.1, 0.5)  # seconds around each expiry moment that count as "at expiry"


@dataclass(frozen=True, slots=True)
class Summary:
    strategy: str
    variant: str
    reads: int
    errors: int
    throughput: float
    p50: float
    p95: float
    p99: float
    p99_at_expiry: float
    p50_at_expiry: float
    expiries: int
    loads: int
    loads_per_expiry_mean: float
    loads_per_expiry_max: int
    stale_reads: int
    stale_age_p99_ms: float
    max_age_ms: float
    holds: int
    visible_mean_ms: float
    visible_max_ms: float
    loadavg: float
    server_p50: float  # upper bucket bound from the server's own latency histogram
    server_p99: float
    runs: int = 1  # > 1: a median over repeated runs


# The figures whose spread over repeated runs the report states beside the median.
RANGED = ("throughput", "loads_per_expiry_mean", "loads_per_expiry_max", "p99", "p99_at_expiry")


def value_range(runs: list[Summary], name: str) -> tuple[float, float]:
    """(min, max) of field `name` over the runs, NaNs left out (NaN, NaN if none is finite)."""
    finite = [float(getattr(r, name)) for r in runs if not math.isnan(float(getattr(r, name)))]
    return (min(finite), max(finite)) if finite else (math.nan, math.nan)


def median_summary(runs: list[Summary]) -> Summary:
    """Field-wise median over repeated runs of one strategy and variant (the machine is shared:
    one unlucky run should not decide a comparison)."""
    first = runs[0]
    values: dict[str, Any] = {}
    for f in fields(Summary):
        column = [getattr(r, f.name) for r in runs]
        if isinstance(column[0], str):
            values[f.name] = column[0]
        else:
            finite = [float(v) for v in column if not math.isnan(float(v))]
            med = float(np.median(finite)) if finite else math.nan
            values[f.name] = round(med) if isinstance(getattr(first, f.name), int) else med
    values["runs"] = len(runs)
    return Summary(**values)


def load_events(data: RunData) -> list[tuple[float, int]]:
    """(sample time, loads since the previous sample) for samples where loads happened."""
    events: list[tuple[float, int]] = []
    for prev, cur in zip(data.samples, data.samples[1:], strict=False):
        n = round(cur.counters["loads"] - prev.counters["loads"])
        if n > 0:
            events.append((cur.t, n))
    return events


def expiry_moments(reads: list[Read]) -> list[float]:
    starts: list[float] = []
    last = -math.inf
    for r in reads:
        if r.status == 200 and r.source != "hit":
            if r.start - last > EPISODE_GAP:
                starts.append(r.start)
            last = r.start
    return starts


def load_episode_moments(events: list[tuple[float, int]]) -> list[float]:
    """Starts of recomputation episodes: load samples closer than EPISODE_GAP form one."""
    starts: list[float] = []
    last = -math.inf
    for t, _ in events:
        if t - last > EPISODE_GAP:
            starts.append(t - SAMPLE_INTERVAL)  # the load began within the preceding sample
        last = t
    return starts


def invalidation_moments(data: RunData) -> list[float]:
    """When each successful hold had invalidated the map (its answer comes after that)."""
    return [h.t + h.latency for h in data.holds if h.status == 201]


def merge_close(moments: list[float]) -> list[float]:
    """Moments closer than EPISODE_GAP to the previous kept one are the same recomputation."""
    kept: list[float] = []
    for t in sorted(moments):
        if not kept or t - kept[-1] > EPISODE_GAP:
            kept.append(t)
    return kept


def refresh_moments(data: RunData) -> list[float]:
    """Expiry moments and invalidations, merged: the events that make a recomputation due."""
    return merge_close(expiry_moments(data.reads) + invalidation_moments(data))


def moments_of(data: RunData) -> list[float]:
    """The moments loads are charged to (none for `none`, which has no cache); the same list
    feeds the summary, the CSV and the timeline plot."""
    if data.strategy == "none":
        return []
    return refresh_moments(data) or load_episode_moments(load_events(data))


def loads_per_expiry(moments: list[float], events: list[tuple[float, int]]) -> list[int]:
    per = [0] * len(moments)
    for t, n in events:
        i = bisect.bisect_right(moments, t) - 1
        if i >= 0:
            per[i] += n
    return per


def loads_per_window(events: list[tuple[float, int]], window: float, duration: float) -> list[int]:
    per = [0] * max(1, math.ceil(duration / window))
    for t, n in events:
        per[min(len(per) - 1, int(t // window))] += n
    return per


def bucket_percentile(buckets: list[tuple[float, float]], q: float) -> float:
    """Upper bound of the histogram bucket holding the q-th percentile (cumulative buckets)."""
    if not buckets or buckets[-1][1] == 0:
        return math.nan
    target = buckets[-1][1] * q / 100
    return next(le for le, n in buckets if n >= target)


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


def summarize(data: RunData, variant: str, duration: float, ttl: float) -> Summary:
    ok = [r for r in data.reads if r.status == 200]
    latencies = [r.latency for r in ok]
    events = load_events(data)
    moments = moments_of(data)
    if data.strategy == "none":
        per = loads_per_window(events, ttl, duration)
    else:
        per = loads_per_expiry(moments, events)
    lo, hi = EXPIRY_WINDOW
    at_expiry = [
        r.latency
        for r in ok
        if moments
        and (i := bisect.bisect_right(moments, r.start - lo) - 1) >= 0
        and r.start - moments[i] <= hi
    ]
    stale_ages = [r.age_ms for r in ok if r.source == "stale"]
    visible = [h.visible_after * 1000 for h in data.holds if h.visible_after is not None]
    return Summary(
        strategy=data.strategy,
        variant=variant,
        reads=len(data.reads),
        errors=len(data.reads) - len(ok),
        throughput=len(ok) / duration,
        p50=_pct(latencies, 50),
        p95=_pct(latencies, 95),
        p99=_pct(latencies, 99),
        p99_at_expiry=_pct(at_expiry, 99),
        p50_at_expiry=_pct(at_expiry, 50),
        expiries=len(moments),
        loads=sum(n for _, n in events),
        loads_per_expiry_mean=float(np.mean(per)) if per else math.nan,
        loads_per_expiry_max=max(per, default=0),
        stale_reads=len(stale_ages),
        stale_age_p99_ms=_pct(stale_ages, 99),
        max_age_ms=max((r.age_ms for r in ok if not math.isnan(r.age_ms)), default=math.nan),
        holds=sum(1 for h in data.holds if h.status == 201),
        visible_mean_ms=float(np.mean(visible)) if visible else math.nan,
        visible_max_ms=max(visible, default=math.nan),
        loadavg=data.loadavg,
        server_p50=bucket_percentile(data.server_buckets, 50),
        server_p99=bucket_percentile(data.server_buckets, 99),
    )
