"""--million: join and poll cost with one queue of 1,000,000 against one of 1,000, and the
opening of a 1,000,000-buyer pre-queue (longest Redis block from SLOWLOG and LATENCY)."""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from load.accounts import create_users
from load.costbench import fixtures, report, rounds, servers, wrk
from load.costbench.measure import Phase
from load.costbench.rounds import Options
from waitingroom import RoomConfig, WaitingRoom
from waitingroom.keys import RoomKeys

SMALL = 1_000
POLL_SAMPLE = 4_000
FILL_BATCH = 10_000
# Polls rotate over at most 10,000 tickets (all 1,000 of the small queue): the per-ticket
# limit is raised so no poll is refused; the limit check itself runs as usual.
POLL_LIMIT = "1000"

# Queue members as the join script leaves them: contiguous scores, ticket <-> user hashes.
_FILL_QUEUE = """
local first, last, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
for i = first, last do
  local u = tostring(100000000 + i)
  local t = prefix .. i
  redis.call('ZADD', KEYS[1], i, u)
  redis.call('HSET', KEYS[2], u, t)
  redis.call('HSET', KEYS[3], t, u)
end
redis.call('SET', KEYS[4], last)
redis.call('SET', KEYS[6], last)
redis.call('SETNX', KEYS[5], prefix)
return last
"""

# Pre-queue members as the join script leaves them: a random 52-bit key each.
_FILL_PRE = """
local first, last = tonumber(ARGV[1]), tonumber(ARGV[2])
math.randomseed(tonumber(ARGV[3]))
for i = first, last do
  local key = math.random(0, 2147483647) * 2097152 + math.random(0, 2097151)
  redis.call('ZADD', KEYS[1], key, tostring(100000000 + i))
end
return last
"""

# The shuffle this project ran before issue 11, in one script (kept here to measure it).
_LEGACY_OPEN = """
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local n = #members
math.randomseed(tonumber(ARGV[1]))
for i = n, 2, -1 do
  local j = math.random(i)
  members[i], members[j] = members[j], members[i]
end
local args = {}
for i = 1, n do
  args[#args + 1] = i - n - 1
  args[#args + 1] = members[i]
  if #args >= 1000 then
    redis.call('ZADD', KEYS[2], unpack(args))
    args = {}
  end
end
if #args > 0 then
  redis.call('ZADD', KEYS[2], unpack(args))
end
redis.call('DEL', KEYS[1])
return n
"""

# Trims a queue back to its filled size after a join phase (joiners dropped, counter reset).
_TRIM = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
redis.call('SET', KEYS[2], ARGV[1])
return 1
"""


async def fill_queue(redis: Redis, event_id: int, size: int) -> list[str]:
    keys = RoomKeys(str(event_id))
    prefix = f"cb{event_id}-"
    script = redis.register_script(_FILL_QUEUE)
    for first in range(1, size + 1, FILL_BATCH):
        last = min(size, first + FILL_BATCH - 1)
        await script(
            keys=[keys.queue, keys.users, keys.tickets, keys.qtail, keys.epoch, keys.seq],
            args=[first, last, prefix],
        )
    rng = random.Random(event_id)
    picks = rng.sample(range(1, size + 1), min(size, POLL_SAMPLE))
    return [f"{prefix}{i}" for i in picks]


async def fill_pre(redis: Redis, key: str, size: int) -> None:
    script = redis.register_script(_FILL_PRE)
    for first in range(1, size + 1, FILL_BATCH):
        await script(keys=[key], args=[first, min(size, first + FILL_BATCH - 1), first])


async def trim(redis_url: str, event_id: int, size: int) -> None:
    redis = Redis.from_url(redis_url)
    keys = RoomKeys(str(event_id))
    try:
        await redis.register_script(_TRIM)(keys=[keys.queue, keys.qtail], args=[size])
    finally:
        await redis.aclose()


def _command(entry: dict[str, Any]) -> str:
    raw = entry.get("command", b"")
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


async def _slowest(redis: Redis) -> tuple[float, str, float, float, int]:
    """(longest ms, its command, median ms, 99th percentile ms, count) over the SLOWLOG's
    script calls (the log also lists the commands a script runs, each on its own)."""
    entries: list[dict[str, Any]] = await redis.slowlog_get(100_000)  # type: ignore[assignment]
    if not entries:
        return 0.0, "", 0.0, 0.0, 0
    worst = max(entries, key=lambda e: int(e["duration"]))
    scripts = [e for e in entries if _command(e).upper().startswith(("EVALSHA", "EVAL "))]
    durations = sorted(int(e["duration"]) / 1000 for e in scripts) or [0.0]
    p99 = durations[min(len(durations) - 1, int(len(durations) * 0.99))]
    longest = int(worst["duration"]) / 1000
    return longest, _command(worst)[:40], statistics.median(durations), p99, len(scripts)


async def _redis_cpu(redis: Redis) -> float:
    info: dict[str, Any] = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def _latency_max(redis: Redis) -> int:
    raw: Any = await redis.execute_command("LATENCY", "LATEST")  # type: ignore[no-untyped-call]
    return max((int(entry[3]) for entry in raw or []), default=0)


async def opening(redis_url: str, size: int) -> dict[str, Any]:
    """Pre-queue `size` buyers, open, and report the longest single Redis block."""
    redis = Redis.from_url(redis_url, socket_timeout=120)
    saved = {
        k: (await redis.config_get(k))[k]
        for k in ("slowlog-log-slower-than", "slowlog-max-len", "latency-monitor-threshold")
    }
    event, legacy = "990001", "990002"
    out: dict[str, Any] = {"pre_queued": size}
    try:
        keys = RoomKeys(event)
        await redis.delete(*keys.all_static(), *RoomKeys(legacy).all_static())
        await fill_pre(redis, keys.pre, size)
        await redis.config_set("slowlog-log-slower-than", 1000)  # 1 ms
        await redis.config_set("slowlog-max-len", 100_000)
        await redis.config_set("latency-monitor-threshold", 1)
        await redis.slowlog_reset()
        await redis.execute_command("LATENCY", "RESET")  # type: ignore[no-untyped-call]
        room = WaitingRoom(redis, "costbench-unused-secret", batch=False)
        past = datetime.now(UTC) - timedelta(seconds=1)
        config = RoomConfig(event, True, 100, 1000, 60, sale_opens_at=past)
        started, cpu0 = time.perf_counter(), await _redis_cpu(redis)
        await room.finish_opening(config)
        out["chunked_seconds"] = round(time.perf_counter() - started, 2)
        out["chunked_redis_cpu_seconds"] = round(await _redis_cpu(redis) - cpu0, 2)
        (
            out["chunked_max_block_ms"],
            out["chunked_max_command"],
            out["chunked_median_ms"],
            out["chunked_p99_ms"],
            out["chunked_steps_logged"],
        ) = await _slowest(redis)
        out["chunked_latency_latest_ms"] = await _latency_max(redis)
        first = await redis.zrange(keys.queue, 0, 0, withscores=True)
        last = await redis.zrange(keys.queue, -1, -1, withscores=True)
        out["queue_after"] = int(await redis.zcard(keys.queue))
        out["pre_after"] = int(await redis.zcard(keys.pre))
        out["scores"] = f"{int(first[0][1])}..{int(last[0][1])}"
        out["chunk"] = room._opening_chunk
        await redis.delete(*keys.all_static())
        # The previous one-script shuffle, for comparison.
        lk = RoomKeys(legacy)
        await fill_pre(redis, lk.pre, size)
        await redis.slowlog_reset()
        await redis.execute_command("LATENCY", "RESET")  # type: ignore[no-untyped-call]
        started, cpu0 = time.perf_counter(), await _redis_cpu(redis)
        await redis.register_script(_LEGACY_OPEN)(keys=[lk.pre, lk.queue], args=[12345])
        out["legacy_seconds"] = round(time.perf_counter() - started, 2)
        out["legacy_redis_cpu_seconds"] = round(await _redis_cpu(redis) - cpu0, 2)
        out["legacy_max_block_ms"], *_ = await _slowest(redis)
        await redis.delete(*lk.all_static())
    finally:
        for name, value in saved.items():
            await redis.config_set(name, value or "")
        await redis.aclose()
    return out


def main(opts: Options, size: int) -> list[Path]:
    wrk.require_wrk()
    with rounds.service(opts, env={"POLL_LIMIT_PER_SECOND": POLL_LIMIT}) as service:
        base = service.base_url
        small = fixtures.create_event(base, rows=1, seats_per_row=10, waiting_room=True, name="1k")
        big = fixtures.create_event(base, rows=1, seats_per_row=10, waiting_room=True, name="1M")
        print(f"costbench --million: filling queues of {SMALL:,} and {size:,}", flush=True)

        async def fill() -> tuple[list[str], list[str]]:
            redis = Redis.from_url(service.redis_url, socket_timeout=120)
            try:
                return await fill_queue(redis, small, SMALL), await fill_queue(redis, big, size)
            finally:
                await redis.aclose()

        small_tickets, big_tickets = asyncio.run(fill())
        per = opts.join_users_per_round
        joiners = asyncio.run(create_users(service.database_url, 2 * per * opts.rounds, "bench"))

        def join_phase(name: str, event: int, offset: int) -> Phase:
            def lines(r: int) -> list[str]:
                start = (offset * opts.rounds + r) * per
                return [
                    f"/api/events/{event}/queue\t{token}"
                    for _, token in joiners[start : start + per]
                ]

            return Phase(name, f"POST /api/events/{event}/queue", wrk.POST_BEARER, lines)

        def poll_phase(name: str, event: int, tickets: list[str]) -> Phase:
            return Phase(
                name,
                f"GET /api/events/{event}/queue/<ticket>",
                wrk.GET_PATH,
                lambda r: [f"/api/events/{event}/queue/{t}" for t in tickets],
            )

        phases = [
            Phase("bare", "/healthz", wrk.GET_PATH, lambda r: ["/healthz"]),
            poll_phase("poll_1k", small, small_tickets),
            poll_phase(f"poll_{size // 1000}k", big, big_tickets),
            join_phase("join_1k", small, 0),
            join_phase(f"join_{size // 1000}k", big, 1),
        ]

        def trim_after_join(phase: Phase) -> None:
            if phase.name.startswith("join"):
                event = small if phase.name == "join_1k" else big
                asyncio.run(trim(service.redis_url, event, SMALL if event == small else size))

        workdir = Path(tempfile.mkdtemp(prefix="costbench-million-"))
        rows, idle = rounds.measure_rounds(
            service, phases, opts, workdir, warm_up=phases[1:3], after_phase=trim_after_join
        )
        meta = rounds.meta(opts, idle, phases)
        # The opening runs on the run's Redis with the service stopped (nothing else on it).
        service.stop_processes()
        print("costbench --million: opening with a full pre-queue", flush=True)
        opened = asyncio.run(opening(service.redis_url, size))
    med = report.medians(rows)
    big_poll, big_join = f"poll_{size // 1000}k", f"join_{size // 1000}k"

    def ratio(a: str, b: str) -> float:
        per_round = [
            x.web_cpu_us / y.web_cpu_us
            for x in rows
            for y in rows
            if x.phase == a and y.phase == b and x.round == y.round and y.web_cpu_us > 0
        ]
        return statistics.median(per_round) if per_round else 0.0

    extra = [
        f"Web CPU per request at {size:,} queued against {SMALL:,} (median of per-round ratios;"
        " target ≤ 1.1):",
        "",
        f"- poll: {ratio(big_poll, 'poll_1k'):.2f} × ({med[big_poll]['web_cpu_us']:.0f} µs "
        f"against {med['poll_1k']['web_cpu_us']:.0f} µs)",
        f"- join: {ratio(big_join, 'join_1k'):.2f} × ({med[big_join]['web_cpu_us']:.0f} µs "
        f"against {med['join_1k']['web_cpu_us']:.0f} µs)",
        "",
        f"Opening with {size:,} pre-queued buyers (Redis SLOWLOG at 1 ms, LATENCY monitor at "
        "1 ms, on the benchmark's Redis while the service was stopped):",
        "",
        f"- chunked move ({opened['chunk']:,} members per script, "
        f"{opened['chunked_steps_logged']} script calls over 1 ms logged): median "
        f"{opened['chunked_median_ms']:.1f} ms, 99th percentile {opened['chunked_p99_ms']:.1f}"
        f" ms, longest {opened['chunked_max_block_ms']:.1f} ms "
        f"(`{opened['chunked_max_command']}`), LATENCY LATEST max "
        f"{opened['chunked_latency_latest_ms']} ms; {opened['chunked_seconds']} s in all, "
        f"{opened['chunked_redis_cpu_seconds']} s of Redis CPU; afterwards "
        f"{opened['queue_after']:,} queued with scores {opened['scores']}, "
        f"{opened['pre_after']} left in the pre-queue (target: longest block ≤ 50 ms)",
        f"- the one-script shuffle used before: one block of {opened['legacy_max_block_ms']:.0f}"
        f" ms ({opened['legacy_seconds']} s, {opened['legacy_redis_cpu_seconds']} s of Redis "
        "CPU)",
        "- SLOWLOG and LATENCY time a command by the wall clock: on a busy machine a command "
        "descheduled by the kernel counts as long; Redis CPU per command is the steadier "
        "figure.",
    ]
    notes = [
        f"Queues filled directly in Redis in the layout the join script writes (contiguous "
        f"scores, ticket and user hashes); polls rotate over {POLL_SAMPLE:,} random tickets of "
        f"the big queue and all {SMALL:,} of the small one, after a warm-up.",
        f"POLL_LIMIT_PER_SECOND={POLL_LIMIT} for this run, so that rotating over 1,000 tickets "
        "is never refused (the check still runs on every poll).",
        "join: each user's first request, the users made before the warm-up; their tokens are "
        "vouched for by their tag while the process's copy of the revocations is current "
        "(booking/token_revocations.py), so no process looks them up; after each join phase "
        "the queue is trimmed back to its filled size.",
        *servers.NOTES,
    ]
    return report.write_all(
        "costbench_million",
        rows,
        meta,
        title=f"Cost per request with {size:,} queued (costbench --million)",
        command="python -m load.costbench --million",
        notes=notes,
        extra=extra,
    )
