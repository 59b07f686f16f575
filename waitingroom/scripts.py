"""Lua scripts: every state change of a room is one atomic script over one event's keys.

All keys of a script share the `{event}` hash tag, so each script touches exactly one
Redis Cluster slot. Time comes in as ARGV (epoch ms) so tests can inject a clock and so
several app processes agree on the tick that the caller computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from waitingroom.batching import ScriptBatcher

# Shared prefix: at the first call after the opening time, shuffle the pre-queue (seeded
# Fisher-Yates, seed from the caller so tests are deterministic) and put it ahead of everyone
# who joined after opening. SETNX on `opened` makes this happen exactly once.
_OPEN_IF_DUE = """
local function open_if_due(k_pre, k_queue, k_opened, now, opens_at, seed)
  if opens_at < 0 or now < opens_at then
    return
  end
  if redis.call('SETNX', k_opened, now) == 0 then
    return
  end
  local members = redis.call('ZRANGE', k_pre, 0, -1)
  local n = #members
  if n == 0 then
    return
  end
  math.randomseed(seed)
  for i = n, 2, -1 do
    local j = math.random(i)
    members[i], members[j] = members[j], members[i]
  end
  -- Scores -n..-1 sort before every post-opening arrival (their scores are seq >= 1).
  local args = {}
  for i = 1, n do
    args[#args + 1] = i - n - 1
    args[#args + 1] = members[i]
    if #args >= 1000 then
      redis.call('ZADD', k_queue, unpack(args))
      args = {}
    end
  end
  if #args > 0 then
    redis.call('ZADD', k_queue, unpack(args))
  end
  redis.call('DEL', k_pre)
end
"""

# KEYS: seq queue pre opened active users tickets joined rate
# ARGV: user new_ticket now_ms opens_at_ms seed admit_per_second
# -> {ticket, status, position|-1, rate, pre_count, is_new}
JOIN = (
    _OPEN_IF_DUE
    + """
local user, now, opens_at = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
open_if_due(KEYS[3], KEYS[2], KEYS[4], now, opens_at, tonumber(ARGV[5]))
local rate = redis.call('HGET', KEYS[9], 'ewma') or ARGV[6]
local ticket = redis.call('HGET', KEYS[6], user)
if ticket then
  local r = redis.call('ZRANK', KEYS[2], user)
  if r then
    return {ticket, 'waiting', r + 1, rate, 0, 0}
  end
  if redis.call('ZSCORE', KEYS[3], user) then
    return {ticket, 'pre', -1, rate, redis.call('ZCARD', KEYS[3]), 0}
  end
  local exp = redis.call('ZSCORE', KEYS[5], user)
  if exp and tonumber(exp) > now then
    return {ticket, 'admitted', -1, rate, 0, 0}
  end
  -- The admission lapsed: the user starts over at the back with a fresh ticket.
  redis.call('HDEL', KEYS[7], ticket)
  redis.call('ZREM', KEYS[5], user)
end
ticket = ARGV[2]
local seq = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[6], user, ticket)
redis.call('HSET', KEYS[7], ticket, user)
if opens_at >= 0 and now < opens_at and redis.call('EXISTS', KEYS[4]) == 0 then
  redis.call('ZADD', KEYS[3], seq, user)
  redis.call('HSET', KEYS[8], user, ARGV[3] .. '|-1|' .. rate)
  return {ticket, 'pre', -1, rate, redis.call('ZCARD', KEYS[3]), 1}
end
redis.call('ZADD', KEYS[2], seq, user)
local pos = redis.call('ZRANK', KEYS[2], user) + 1
redis.call('HSET', KEYS[8], user, ARGV[3] .. '|' .. pos .. '|' .. rate)
return {ticket, 'waiting', pos, rate, 0, 1}
"""
)

# KEYS: tickets queue pre opened active rate poll_limit
# ARGV: ticket now_ms opens_at_ms seed admit_per_second poll_limit
# -> {'unknown'} | {'limited', user, retry_ms}
#    | {'ok', user, status, position|-1, rate, pre_count, expiry_ms}
POLL = (
    _OPEN_IF_DUE
    + """
local user = redis.call('HGET', KEYS[1], ARGV[1])
if not user then
  return {'unknown'}
end
-- Fixed one-second window per ticket; checked before any other work.
local hits = redis.call('INCR', KEYS[7])
if hits == 1 then
  redis.call('PEXPIRE', KEYS[7], 1000)
end
if hits > tonumber(ARGV[6]) then
  local ttl = redis.call('PTTL', KEYS[7])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[7], 1000)
    ttl = 1000
  end
  return {'limited', user, ttl}
end
local now = tonumber(ARGV[2])
open_if_due(KEYS[3], KEYS[2], KEYS[4], now, tonumber(ARGV[3]), tonumber(ARGV[4]))
local rate = redis.call('HGET', KEYS[6], 'ewma') or ARGV[5]
local r = redis.call('ZRANK', KEYS[2], user)
if r then
  return {'ok', user, 'waiting', r + 1, rate, 0, '0'}
end
if redis.call('ZSCORE', KEYS[3], user) then
  return {'ok', user, 'pre', -1, rate, redis.call('ZCARD', KEYS[3]), '0'}
end
local exp = redis.call('ZSCORE', KEYS[5], user)
if exp and tonumber(exp) > now then
  return {'ok', user, 'admitted', -1, rate, 0, exp}
end
return {'ok', user, 'expired', -1, rate, 0, '0'}
"""
)

# KEYS: queue pre opened active tick rate joined paused
# ARGV: now_ms tick_second admit_per_second max_active window_ms opens_at_ms seed alpha
# -> {ticked, expired, queue_len, active_len, pre_len, user1, joined1, user2, joined2, ...}
ADMIT = (
    _OPEN_IF_DUE
    + """
local now, tick = tonumber(ARGV[1]), tonumber(ARGV[2])
open_if_due(KEYS[2], KEYS[1], KEYS[3], now, tonumber(ARGV[6]), tonumber(ARGV[7]))
local last = tonumber(redis.call('GET', KEYS[5]) or '-1')
if tick <= last then
  -- Another process already admitted for this second: report sizes only (for gauges).
  return {0, 0, redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[4]),
          redis.call('ZCARD', KEYS[2])}
end
redis.call('SET', KEYS[5], tick)
-- Admissions whose window passed are dropped first, so their slots are reused now.
local expired = redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local qlen = redis.call('ZCARD', KEYS[1])
local free = tonumber(ARGV[4]) - redis.call('ZCARD', KEYS[4])
local n = math.min(tonumber(ARGV[3]), free)
-- An operator's pause lives in a key read here, so it holds from the very next tick whatever
-- config a process has cached; places and the rate estimate are kept for the resume.
local paused = redis.call('EXISTS', KEYS[8]) == 1
if paused then
  n = 0
end
local out = {1, expired, 0, 0, 0}
if n > 0 and qlen > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[1], n)
  local expiry = now + tonumber(ARGV[5])
  local users = {}
  for i = 1, #popped, 2 do
    local u = popped[i]
    users[#users + 1] = u
    redis.call('ZADD', KEYS[4], expiry, u)
    out[#out + 1] = u
    out[#out + 1] = redis.call('HGET', KEYS[7], u) or ''
  end
  redis.call('HDEL', KEYS[7], unpack(users))
end
-- EWMA of admissions per second, only while people wait: an idle second says nothing
-- about how fast the queue drains.
if qlen > 0 and not paused then
  local admitted = (#out - 5) / 2
  local alpha = tonumber(ARGV[8])
  local prev = redis.call('HGET', KEYS[6], 'ewma')
  local ewma = admitted
  if prev then
    ewma = alpha * admitted + (1 - alpha) * tonumber(prev)
  end
  redis.call('HSET', KEYS[6], 'ewma', tostring(ewma))
end
out[3] = redis.call('ZCARD', KEYS[1])
out[4] = redis.call('ZCARD', KEYS[4])
out[5] = redis.call('ZCARD', KEYS[2])
return out
"""
)

# KEYS: users tickets queue pre active joined
# ARGV: user revocation_channel event
# -> {was_active, was_waiting}
REMOVE = """
local user = ARGV[1]
local ticket = redis.call('HGET', KEYS[1], user)
if ticket then
  redis.call('HDEL', KEYS[2], ticket)
end
redis.call('HDEL', KEYS[1], user)
redis.call('HDEL', KEYS[6], user)
local active = redis.call('ZREM', KEYS[5], user)
local waiting = redis.call('ZREM', KEYS[3], user) + redis.call('ZREM', KEYS[4], user)
-- An admission ended early: tell every process's revocation feed (revocations.py).
if active == 1 and ticket then
  redis.call('PUBLISH', ARGV[2], 't|' .. ARGV[3] .. '|' .. ticket)
end
return {active, waiting}
"""


@dataclass(frozen=True)
class Scripts:
    """The scripts registered on one client (EVALSHA with automatic NOSCRIPT reload)."""

    join: AsyncScript
    poll: AsyncScript
    admit: AsyncScript
    remove: AsyncScript
    batcher: ScriptBatcher | None = None

    @classmethod
    def register(cls, redis: Redis, *, batch: bool = True) -> Scripts:
        return cls(
            join=redis.register_script(JOIN),
            poll=redis.register_script(POLL),
            admit=redis.register_script(ADMIT),
            remove=redis.register_script(REMOVE),
            batcher=ScriptBatcher(redis) if batch else None,
        )

    async def run(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        if self.batcher is None:
            return await script(keys=keys, args=args)
        return await self.batcher.call(script, keys, args)
