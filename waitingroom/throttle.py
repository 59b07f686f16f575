"""Redis side of the bot defence: fixed-window per-IP counters and single-use PoW solutions.

One Lua script does both for a join, so the check costs one round trip (pipelined with other
requests' calls by the ScriptBatcher) next to the join script. Per-event keys carry the event's
hash tag (`wr:{<event>}:…`), so a join's keys stay in one Redis Cluster slot.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from waitingroom.batching import ScriptBatcher

# KEYS: [counter, if ARGV[1] > 0] [solution id, if ARGV[3] > 0]
# ARGV: limit window_ms solution_ttl_ms  -> {'ok'|'limited'|'reused', retry_ms}
# The counter is checked first: a limited client does not burn its solution.
THROTTLE = """
local limit, window, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local i = 1
if limit > 0 then
  local hits = redis.call('INCR', KEYS[1])
  if hits == 1 then
    redis.call('PEXPIRE', KEYS[1], window)
  end
  if hits > limit then
    local left = redis.call('PTTL', KEYS[1])
    if left < 0 then
      redis.call('PEXPIRE', KEYS[1], window)
      left = window
    end
    return {'limited', left}
  end
  i = 2
end
if ttl > 0 and not redis.call('SET', KEYS[i], '1', 'NX', 'PX', ttl) then
  return {'reused', 0}
end
return {'ok', 0}
"""

WINDOW_MS = 60_000


@dataclass(frozen=True)
class ThrottleResult:
    outcome: str  # ok | limited | reused
    retry_after_ms: int = 0


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
