"""A Redis mutex per key: SET NX PX with a random token, released only by its owner."""

from __future__ import annotations

import secrets

from redis.asyncio import Redis

# Compare-and-delete: a holder whose lock already expired (and was taken by someone else) must not
# delete the new holder's lock.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLock:
    def __init__(self, redis: Redis, ttl_seconds: float, suffix: str = ":lock") -> None:
        self._redis = redis
        self._ttl_ms = max(1, round(ttl_seconds * 1000))
        self._suffix = suffix
        self._release = redis.register_script(_RELEASE)

    def key(self, key: str) -> str:
        return key + self._suffix

    async def acquire(self, key: str) -> str | None:
        """The owner token, or None if the lock is held. Expires by itself (crash-safe)."""
        token = secrets.token_hex(16)
        ok = await self._redis.set(self.key(key), token, nx=True, px=self._ttl_ms)
        return token if ok else None

    async def release(self, key: str, token: str) -> bool:
        return bool(await self._release(keys=[self.key(key)], args=[token]))
