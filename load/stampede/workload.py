"""The stampede experiment's client side: closed-loop seat-map readers, optional bookings
(holds, each invalidating the map) with a probe timing when each hold becomes visible, and a
/metrics sampler reading the server's seat_cache_* counters. Everything bounded by a deadline.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
from dataclasses import dataclass, field

import httpx

COUNTERS = ("loads", "hits", "misses", "stale_served", "lock_waits")
_SEATS_BUCKET = re.compile(
    r'^http_request_duration_seconds_bucket\{le="([^"]+)",method="GET",route="[^"]*seats"\} (\S+)$',
    re.MULTILINE,
)
_COUNTER_LINE = re.compile(
    r'^seat_cache_(loads|hits|misses|stale_served|lock_waits)_total\{strategy="([a-z-]+)"\} (\S+)$',
    re.MULTILINE,
)
SAMPLE_INTERVAL = 0.05
VISIBILITY_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class Read:
    start: float  # seconds since the measurement began
    latency: float
    status: int  # 0: transport error
    source: str  # X-Cache: hit, miss, load, stale ("" on error)
    age_ms: float  # X-Cache-Age-Ms: age of the data served


@dataclass(frozen=True, slots=True)
class Sample:
    t: float
    counters: dict[str, float]


@dataclass(frozen=True, slots=True)
class Hold:
    t: float
    latency: float
    status: int
    visible_after: float | None  # seconds from the hold's answer until the seat map showed it


@dataclass
class Workload:
    readers: int
    duration: float
    think: float
    holds_per_second: float = 0.0


@dataclass
class RunData:
    strategy: str
    reads: list[Read] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    loadavg: float = 0.0  # 1-minute load average at the end: the machine is shared
    # The server's own http_request_duration_seconds buckets for the seat-map route:
    # (upper bound, cumulative count). The client shares 2 CPUs with the server, so bursts of
    # answers (after a pile-up) queue in the client; these show what the server itself took.
    server_buckets: list[tuple[float, float]] = field(default_factory=list)


def parse_counters(text: str, strategy: str) -> dict[str, float]:
    found = {name: 0.0 for name in COUNTERS}
    for name, label, value in _COUNTER_LINE.findall(text):
        if label == strategy:
            found[name] = float(value)
    return found


async def _reader(
    client: httpx.AsyncClient, url: str, w: Workload, t0: float, out: RunData
) -> None:
    deadline = t0 + w.duration
    await asyncio.sleep(random.uniform(0, w.think))  # readers out of step from the start
    while (now := time.perf_counter()) < deadline:
        try:
            r = await client.get(url)
            status, source = r.status_code, r.headers.get("x-cache", "")
            age_ms = float(r.headers.get("x-cache-age-ms", "nan"))
        except httpx.HTTPError:
            status, source, age_ms = 0, "", float("nan")
        out.reads.append(Read(now - t0, time.perf_counter() - now, status, source, age_ms))
        if w.think:
            await asyncio.sleep(w.think * random.uniform(0.5, 1.5))


async def _sampler(client: httpx.AsyncClient, w: Workload, t0: float, out: RunData) -> None:
    deadline = t0 + w.duration
    while time.perf_counter() < deadline + 0.5:
        try:
            text = (await client.get("/metrics")).text
            # stamped on arrival: the server read its counters just before answering
            out.samples.append(Sample(time.perf_counter() - t0, parse_counters(text, out.strategy)))
        except httpx.HTTPError:
            pass
        await asyncio.sleep(SAMPLE_INTERVAL)


async def _visible_after(client: httpx.AsyncClient, url: str, seats: set[int]) -> float | None:
    """Poll the seat map until every seat of the hold shows as not available; the delay is
    counted to the start of the read that showed it (its own queueing is not staleness)."""
    started = time.perf_counter()
    while (sent := time.perf_counter()) - started < VISIBILITY_TIMEOUT:
        try:
            r = await client.get(url)
        except httpx.HTTPError:
            continue
        if r.status_code == 200:
            status = {s["id"]: s["status"] for s in r.json() if s["id"] in seats}
            if all(status.get(i) not in (None, "available") for i in seats):
                return sent - started
        await asyncio.sleep(0.05)
    return None


async def _booker(
    client: httpx.AsyncClient,
    event_id: int,
    free_seats: list[int],
    token: str,
    w: Workload,
    t0: float,
    out: RunData,
) -> None:
    deadline = t0 + w.duration
    url = f"/api/events/{event_id}/seats"
    probes: list[asyncio.Task[None]] = []

    async def probe(t: float, latency: float, status: int, seats: set[int]) -> None:
        out.holds.append(Hold(t, latency, status, await _visible_after(client, url, seats)))

    random.shuffle(free_seats)
    while (now := time.perf_counter()) < deadline and len(free_seats) >= 2:
        seats = [free_seats.pop(), free_seats.pop()]
        try:
            r = await client.post(
                f"/api/events/{event_id}/holds",
                json={"seat_ids": seats},
                headers={"Authorization": f"Bearer {token}"},
            )
            status = r.status_code
        except httpx.HTTPError:
            status = 0
        answered = time.perf_counter()
        if status == 201:
            probes.append(asyncio.create_task(probe(now - t0, answered - now, status, set(seats))))
        else:
            out.holds.append(Hold(now - t0, answered - now, status, None))
        await asyncio.sleep(max(0.0, 1.0 / w.holds_per_second - (answered - now)))
    await asyncio.gather(*probes)


async def run(
    base_url: str,
    strategy: str,
    event_id: int,
    w: Workload,
    free_seats: list[int] | None = None,
    token: str = "",
) -> RunData:
    out = RunData(strategy)
    limits = httpx.Limits(max_connections=w.readers + 20, max_keepalive_connections=w.readers + 20)
    timeout = httpx.Timeout(60.0)
    # The sampler and the booker get clients of their own: not queued behind 200 readers.
    async with (
        httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client,
        httpx.AsyncClient(base_url=base_url, timeout=timeout) as side,
    ):
        url = f"/api/events/{event_id}/seats"
        (await client.get(url)).raise_for_status()  # warm: the first population is not measured
        t0 = time.perf_counter()
        tasks = [_reader(client, url, w, t0, out) for _ in range(w.readers)]
        tasks.append(_sampler(side, w, t0, out))
        if w.holds_per_second > 0 and free_seats:
            tasks.append(_booker(side, event_id, free_seats, token, w, t0, out))
        await asyncio.gather(*tasks)
        text = (await side.get("/metrics")).text
        out.server_buckets = [(float(le), float(n)) for le, n in _SEATS_BUCKET.findall(text)]
    out.reads.sort(key=lambda r: r.start)
    out.loadavg = os.getloadavg()[0]
    return out
