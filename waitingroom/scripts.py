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
from waitingroom.throttle import GUARD_LUA

# Queue scores come from one counter (`qtail`) and are contiguous: the only holes are buyers
# who left while waiting (recorded in `gone`) and admitted buyers (all below the head, because
# admission pops the lowest scores). So a position is `score - head + 1 - (gone in between)`,
# which a web process can compute from a small snapshot without asking Redis (view.py).
#
# Pre-queue: every joiner before the opening gets a random key (from the caller's seeded RNG);
# the order of those keys is the draw. At the first call after the opening time the range of
# queue scores for the whole pre-queue is reserved in O(1) (`open_if_due`), and the members are
# then moved into the queue in key order by OPEN_STEP, a bounded chunk per call, so no single
# script blocks Redis for long even with a million pre-queued buyers.
_PRELUDE = """
local function open_if_due(k_pre, k_opened, k_qtail, k_opening, now, opens_at)
  if opens_at < 0 or now < opens_at then
    return
  end
  if redis.call('SETNX', k_opened, now) == 0 then
    return
  end
  local n = redis.call('ZCARD', k_pre)
  if n == 0 then
    return
  end
  local base = tonumber(redis.call('GET', k_qtail) or '0')
  redis.call('SET', k_qtail, base + n)
  redis.call('HSET', k_opening, 'base', base, 'end', base + n, 'moved', 0)
end

-- Pre-queue members not yet moved are all ahead of anyone whose score lies beyond the
-- reserved range (`open_end`: the opening hash's 'end', or false when no move is under way).
local function plus_unmoved(k_pre, open_end, score, r)
  if open_end and score > tonumber(open_end) then
    r = r + redis.call('ZCARD', k_pre)
  end
  return r
end

-- 1-based place of a queued user.
local function position(k_queue, k_pre, open_end, user, score)
  return plus_unmoved(k_pre, open_end, score, redis.call('ZRANK', k_queue, user) + 1)
end
"""

# KEYS: seq queue pre opened active users tickets joined rate qtail opening epoch
#       [join counter, if ARGV[7] > 0] [PoW solution, if ARGV[9] > 0]
# ARGV: user new_ticket now_ms opens_at_ms pre_key admit_per_second
#       [limit window_ms solution_ttl_ms: the bot defence's checks, throttle.JoinGuard]
# -> {ticket, status, position|-1, rate, pre_count, is_new, score, opening}
#    | {'limited', retry_ms} | {'reused', 0} (refused by the guard: nothing changed but its keys)
# A first join into an open queue runs 10 commands (docs/waitingroom-cost.md), plus 1-3 for
# the guard when the defence is on.
JOIN = (
    _PRELUDE
    + GUARD_LUA
    + """
local limit, ttl = tonumber(ARGV[7] or '0'), tonumber(ARGV[9] or '0')
if limit > 0 or ttl > 0 then
  local counter, solution = nil, KEYS[13]
  if limit > 0 then
    counter, solution = KEYS[13], KEYS[14]
  end
  local refused = guard(counter, solution, limit, tonumber(ARGV[8]), ttl)
  if refused then
    return refused
  end
end
local user, now, opens_at = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
open_if_due(KEYS[3], KEYS[4], KEYS[10], KEYS[11], now, opens_at)
-- The opening hash always holds 'end' while a move is under way: one read says both.
local open_end = redis.call('HGET', KEYS[11], 'end')
local opening = open_end and 1 or 0
local rate = redis.call('HGET', KEYS[9], 'ewma') or ARGV[6]
local ticket = redis.call('HGET', KEYS[6], user)
if ticket then
  local sc = redis.call('ZSCORE', KEYS[2], user)
  if sc then
    sc = tonumber(sc)
    return {ticket, 'waiting', position(KEYS[2], KEYS[3], open_end, user, sc), rate, 0, 0, sc,
            opening}
  end
  if redis.call('ZSCORE', KEYS[3], user) then
    return {ticket, 'pre', -1, rate, redis.call('ZCARD', KEYS[3]), 0, 0, opening}
  end
  local exp = redis.call('ZSCORE', KEYS[5], user)
  if exp and tonumber(exp) > now then
    return {ticket, 'admitted', -1, rate, 0, 0, 0, opening}
  end
  -- The admission lapsed: the user starts over at the back with a fresh ticket.
  redis.call('HDEL', KEYS[7], ticket)
  redis.call('ZREM', KEYS[5], user)
end
ticket = ARGV[2]
-- `seq` counts every ticket ever issued (joined = waiting + admitted, for the surge checks).
-- Its first ticket starts this queue's lifetime (a reset deletes both): name the epoch then.
if redis.call('INCR', KEYS[1]) == 1 then
  redis.call('SETNX', KEYS[12], ARGV[2])
end
redis.call('HSET', KEYS[6], user, ticket)
redis.call('HSET', KEYS[7], ticket, user)
if opens_at >= 0 and now < opens_at and redis.call('EXISTS', KEYS[4]) == 0 then
  redis.call('ZADD', KEYS[3], ARGV[5], user)
  redis.call('HSET', KEYS[8], user, ARGV[3] .. '|-1|' .. rate)
  return {ticket, 'pre', -1, rate, redis.call('ZCARD', KEYS[3]), 1, 0, opening}
end
local sc = redis.call('INCR', KEYS[10])
redis.call('ZADD', KEYS[2], sc, user)
-- Every queue score comes from `qtail`, so the newcomer has the highest: last in the set.
local pos = plus_unmoved(KEYS[3], open_end, sc, redis.call('ZCARD', KEYS[2]))
redis.call('HSET', KEYS[8], user, ARGV[3] .. '|' .. pos .. '|' .. rate)
return {ticket, 'waiting', pos, rate, 0, 1, sc, opening}
"""
)

# KEYS: tickets queue pre opened active rate poll_limit qtail opening
# ARGV: ticket now_ms opens_at_ms admit_per_second poll_limit
# -> {'unknown'} | {'limited', user, retry_ms}
#    | {'ok', user, status, position|-1, rate, pre_count, expiry_ms, score}
POLL = (
    _PRELUDE
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
if hits > tonumber(ARGV[5]) then
  local ttl = redis.call('PTTL', KEYS[7])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[7], 1000)
    ttl = 1000
  end
  return {'limited', user, ttl}
end
local now = tonumber(ARGV[2])
open_if_due(KEYS[3], KEYS[4], KEYS[8], KEYS[9], now, tonumber(ARGV[3]))
local rate = redis.call('HGET', KEYS[6], 'ewma') or ARGV[4]
local sc = redis.call('ZSCORE', KEYS[2], user)
if sc then
  sc = tonumber(sc)
  local open_end = redis.call('HGET', KEYS[9], 'end')
  return {'ok', user, 'waiting', position(KEYS[2], KEYS[3], open_end, user, sc), rate, 0, '0', sc}
end
if redis.call('ZSCORE', KEYS[3], user) then
  return {'ok', user, 'pre', -1, rate, redis.call('ZCARD', KEYS[3]), '0', 0}
end
local exp = redis.call('ZSCORE', KEYS[5], user)
if exp and tonumber(exp) > now then
  return {'ok', user, 'admitted', -1, rate, 0, exp, 0}
end
return {'ok', user, 'expired', -1, rate, 0, '0', 0}
"""
)

# KEYS: pre queue opened qtail opening gone gver
# ARGV: now_ms opens_at_ms chunk
# -> {moved_now, still_pre}; moves at most `chunk` pre-queue members (lowest keys first) to
#    the next scores of the reserved range. When the pre-queue is empty, the rest of the
#    range (members who left before being moved) is recorded in `gone` and the move ends.
OPEN_STEP = (
    _PRELUDE
    + """
open_if_due(KEYS[1], KEYS[3], KEYS[4], KEYS[5], tonumber(ARGV[1]), tonumber(ARGV[2]))
if redis.call('EXISTS', KEYS[5]) == 0 then
  return {0, 0}
end
local o = redis.call('HMGET', KEYS[5], 'base', 'end', 'moved')
local base, e, moved = tonumber(o[1]), tonumber(o[2]), tonumber(o[3])
local popped = redis.call('ZPOPMIN', KEYS[1], tonumber(ARGV[3]))
local args = {}
for i = 1, #popped, 2 do
  moved = moved + 1
  args[#args + 1] = base + moved
  args[#args + 1] = popped[i]
  if #args >= 1000 then
    redis.call('ZADD', KEYS[2], unpack(args))
    args = {}
  end
end
if #args > 0 then
  redis.call('ZADD', KEYS[2], unpack(args))
end
local left = redis.call('ZCARD', KEYS[1])
if left > 0 then
  redis.call('HSET', KEYS[5], 'moved', moved)
  return {#popped / 2, left}
end
if moved < e - base then
  for s = base + moved + 1, e do
    redis.call('ZADD', KEYS[6], s, s)
  end
  redis.call('INCR', KEYS[7])
end
redis.call('DEL', KEYS[5])
return {#popped / 2, 0}
"""
)

# KEYS: queue pre opened active tick rate joined qtail opening gone paused
# ARGV: now_ms tick_second admit_per_second max_active window_ms opens_at_ms alpha
# -> {ticked, expired, queue_len, active_len, pre_len, user1, joined1, user2, joined2, ...}
ADMIT = (
    _PRELUDE
    + """
local now, tick = tonumber(ARGV[1]), tonumber(ARGV[2])
open_if_due(KEYS[2], KEYS[3], KEYS[8], KEYS[9], now, tonumber(ARGV[6]))
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
-- While the pre-queue is still moving, only its moved part may be admitted (FIFO).
local o = redis.call('HMGET', KEYS[9], 'base', 'moved')
if o[1] then
  n = math.min(n, redis.call('ZCOUNT', KEYS[1], '-inf', tonumber(o[1]) + tonumber(o[2])))
end
-- An operator's pause lives in a key read here, so it holds from the very next tick whatever
-- config a process has cached; places and the rate estimate are kept for the resume.
local paused = redis.call('EXISTS', KEYS[11]) == 1
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
  -- Holes below the new head no longer matter to anyone's position.
  local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if head[2] then
    redis.call('ZREMRANGEBYSCORE', KEYS[10], '-inf', '(' .. head[2])
  elseif not o[1] then
    redis.call('DEL', KEYS[10])
  end
end
-- EWMA of admissions per second, only while people wait: an idle second says nothing
-- about how fast the queue drains.
if qlen > 0 and not paused then
  local admitted = (#out - 5) / 2
  local alpha = tonumber(ARGV[7])
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

# KEYS: users tickets queue pre active joined gone gver
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
local sc = redis.call('ZSCORE', KEYS[3], user)
local waiting = redis.call('ZREM', KEYS[4], user)
if sc then
  -- A hole in the contiguous scores: positions behind it shrink by one.
  redis.call('ZREM', KEYS[3], user)
  redis.call('ZADD', KEYS[7], sc, sc)
  redis.call('INCR', KEYS[8])
  waiting = waiting + 1
end
-- An admission ended early: tell every process's revocation feed (revocations.py).
if active == 1 and ticket then
  redis.call('PUBLISH', ARGV[2], 't|' .. ARGV[3] .. '|' .. ticket)
end
return {active, waiting}
"""

# KEYS: epoch queue qtail opening pre gone gver rate
# ARGV: known_gone_version
# -> {epoch, head, tail, gone_version, pre_count, open_end|-1, open_gap, rate|'', gone...}
#    (`gone` scores from the head on, only when gone_version differs from the caller's)
SNAPSHOT = """
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local tail = tonumber(redis.call('GET', KEYS[3]) or '0')
local head = tail + 1
if first[2] then
  head = tonumber(first[2])
end
local pre = redis.call('ZCARD', KEYS[5])
local open_end, gap = -1, 0
local o = redis.call('HMGET', KEYS[4], 'base', 'end', 'moved')
if o[1] then
  local base, e, moved = tonumber(o[1]), tonumber(o[2]), tonumber(o[3])
  head = math.min(head, base + moved + 1)
  open_end = e
  gap = e - base - moved - pre
end
local gver = redis.call('GET', KEYS[7]) or '0'
local out = {redis.call('GET', KEYS[1]) or '', head, tail, gver, pre, open_end, gap,
             redis.call('HGET', KEYS[8], 'ewma') or ''}
if gver ~= ARGV[1] then
  local gone = redis.call('ZRANGEBYSCORE', KEYS[6], head, '+inf')
  for i = 1, #gone do
    out[#out + 1] = gone[i]
  end
end
return out
"""


@dataclass(frozen=True)
class Scripts:
    """The scripts registered on one client (EVALSHA with automatic NOSCRIPT reload)."""

    join: AsyncScript
    poll: AsyncScript
    admit: AsyncScript
    remove: AsyncScript
    open_step: AsyncScript
    snapshot: AsyncScript
    batcher: ScriptBatcher | None = None

    @classmethod
    def register(cls, redis: Redis, *, batch: bool = True) -> Scripts:
        return cls(
            join=redis.register_script(JOIN),
            poll=redis.register_script(POLL),
            admit=redis.register_script(ADMIT),
            remove=redis.register_script(REMOVE),
            open_step=redis.register_script(OPEN_STEP),
            snapshot=redis.register_script(SNAPSHOT),
            batcher=ScriptBatcher(redis) if batch else None,
        )

    async def run(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        if self.batcher is None:
            return await script(keys=keys, args=args)
        return await self.batcher.call(script, keys, args)
