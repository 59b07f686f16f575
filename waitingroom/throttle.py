"""Redis side of the bot defence: fixed-window per-IP counters and single-use PoW solutions.

The join's own checks run inside the join script itself (`JoinGuard`, GUARD_LUA in
scripts.JOIN): one round trip per join whatever the defence does. Per-event keys carry the
event's hash tag (`wr:{<event>}:…`), so a join's keys, these included, stay in one Redis
Cluster slot: the join limit is per address and event. THROTTLE (the same rules as a script of
its own) serves the other counters: new accounts, polls of unknown tickets, the gate's join.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from waitingroom.batching import ScriptBatcher

# guard(counter|nil, solution|nil, limit, window_ms, solution_ttl_ms) -> nil when allowed, else
# {'limited', retry_ms} | {'reused', 0}. The counter is checked first: a limited client does not
# burn its solution.
GUARD_LUA = """
local function guard(k_counter, k_solution, limit, window, ttl)
  if limit > 0 then
    local hits = redis.call('INCR', k_counter)
    if hits == 1 then
      redis.call('PEXPIRE', k_counter, window)
    end
    if hits > limit then
      local left = redis.call('PTTL', k_counter)
      if left < 0 then
        redis.call('PEXPIRE', k_counter, window)
        left = window
      end
      return {'limited', left}
    end
  end
  if ttl > 0 and not redis.call('SET', k_solution, '1', 'NX', 'PX', ttl) then
    return {'reused', 0}
  end
  return nil
end
"""

# KEYS: [counter, if ARGV[1] > 0] [solution id, if ARGV[3] > 0]
# ARGV: limit window_ms solution_ttl_ms  -> {'ok'|'limited'|'reused', retry_ms}
THROTTLE = (
    GUARD_LUA
    + """
local limit, ttl = tonumber(ARGV[1]), tonumber(ARGV[3])
local counter, solution = nil, KEYS[1]
if limit > 0 then
  counter, solution = KEYS[1], KEYS[2]
end
return guard(counter, solution, limit, tonumber(ARGV[2]), ttl) or {'ok', 0}
"""
)

WINDOW_MS = 60_000


@dataclass(frozen=True)
class ThrottleResult:
    outcome: str  # ok | limited | reused
    retry_after_ms: int = 0


@dataclass(frozen=True)
class JoinGuard:
    """What the join script checks before it queues anyone (keys without REDIS_KEY_PREFIX,
    which the room adds): count one hit on `counter_key` against `limit` (when > 0) and claim
    `solution_key` for `solution_ttl_ms` (when > 0)."""

    counter_key: str
    limit: int
    solution_key: str | None = None
    solution_ttl_ms: int = 0
    window_ms: int = WINDOW_MS

    def keys(self) -> list[str]:
        keys = [self.counter_key] if self.limit > 0 else []
        if self.solution_key is not None and self.solution_ttl_ms > 0:
            keys.append(self.solution_key)
        return keys

    def args(self) -> list[int]:
        ttl = self.solution_ttl_ms if self.solution_key is not None else 0
        return [max(0, self.limit), self.window_ms, max(0, ttl)]


def join_counter_key(event_id: str, ip: str) -> str:
    return f"wr:{{{event_id}}}:rl:join:{ip}"


def unknown_poll_key(event_id: str, ip: str) -> str:
    return f"wr:{{{event_id}}}:rl:unknown:{ip}"


def solution_key(event_id: str, challenge_id: str) -> str:
    return f"wr:{{{event_id}}}:pow:{challenge_id}"


def account_counter_key(ip: str) -> str:
    return f"rl:accounts:{{{ip}}}"


class Throttle:
    def __init__(self, redis: Redis, key_prefix: str = "") -> None:
        self._script = redis.register_script(THROTTLE)
        self._prefix = key_prefix  # REDIS_KEY_PREFIX, before every key as for the room's keys
        self._batcher = ScriptBatcher(redis)

    async def check(
        self,
        counter_key: str | None,
        limit: int,
        solution: str | None = None,
        solution_ttl_ms: int = 0,
        window_ms: int = WINDOW_MS,
    ) -> ThrottleResult:
        """Count one hit on `counter_key` (limit > 0) and claim `solution` (single use)."""
        keys: list[str] = []
        if counter_key is not None and limit > 0:
            keys.append(counter_key)
        else:
            limit = 0
        if solution is not None and solution_ttl_ms > 0:
            keys.append(solution)
        else:
            solution_ttl_ms = 0
        if not keys:
            return ThrottleResult("ok")
        keys = [self._prefix + key for key in keys]
        res = await self._batcher.call(self._script, keys, [limit, window_ms, solution_ttl_ms])
        outcome = res[0].decode() if isinstance(res[0], bytes) else str(res[0])
        return ThrottleResult(outcome, int(res[1]))

    async def hit(self, counter_key: str, limit: int, window_ms: int = WINDOW_MS) -> int | None:
        """Count one hit; None when allowed, else milliseconds until the window resets."""
        result = await self.check(counter_key, limit, window_ms=window_ms)
        return result.retry_after_ms if result.outcome == "limited" else None
