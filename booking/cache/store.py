"""Redis I/O of envelopes and invalidation watermarks; no policy decisions here."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from booking.cache.envelope import Envelope, decode, encode

# Raise the watermark only forwards (concurrent invalidations may arrive out of order), keep it
# as long as any value it must outrank, and optionally drop the value in the same round trip.
_INVALIDATE = """
local cur = redis.call('GET', KEYS[2])
if (not cur) or tonumber(ARGV[1]) > tonumber(cur) then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
else
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
if ARGV[3] == '1' then redis.call('DEL', KEYS[1]) end
return 1
"""


def watermark_key(key: str) -> str:
    return f"{key}:inv"


@dataclass(frozen=True, slots=True)
class Snapshot:
    envelope: Envelope | None
    invalidated_at: float  # 0.0 if never invalidated (or the watermark has expired)
    locked: bool = False  # only meaningful when read with a lock key


def _to_float(raw: bytes | str | None) -> float:
    return float(raw) if raw is not None else 0.0


class RedisStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._invalidate = redis.register_script(_INVALIDATE)

    async def read(self, key: str, lock_key: str | None = None) -> Snapshot:
        """Value and watermark (and whether `lock_key` exists) in one round trip."""
        keys = (
            [key, watermark_key(key)] if lock_key is None else [key, watermark_key(key), lock_key]
        )
        raw = await self._redis.mget(keys)
        blob = raw[0]
        env = decode(blob.encode() if isinstance(blob, str) else blob) if blob is not None else None
        return Snapshot(env, _to_float(raw[1]), lock_key is not None and raw[2] is not None)

    async def write(self, key: str, env: Envelope, keep_seconds: float) -> None:
        await self._redis.set(key, encode(env), px=max(1, round(keep_seconds * 1000)))

    async def invalidate(self, key: str, at: float, keep_seconds: float, delete: bool) -> None:
        await self._invalidate(
            keys=[key, watermark_key(key)],
            args=[repr(at), max(1, round(keep_seconds * 1000)), "1" if delete else "0"],
        )
