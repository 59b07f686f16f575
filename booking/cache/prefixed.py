"""REDIS_KEY_PREFIX for the seat cache: every key (and so its watermark and lock) gets it."""

from __future__ import annotations

from booking.cache.base import CachedValue, Loader, SeatCache


class PrefixedCache:
    """Prefixes keys on the way in; the `{hash tag}` inside the key is kept, so is its slot."""

    def __init__(self, inner: SeatCache, prefix: str) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError(f"a Redis key prefix must not contain braces: {prefix!r}")
        self.strategy = inner.strategy
        self.inner = inner
        self.prefix = prefix

    async def get(self, key: str, loader: Loader) -> CachedValue:
        return await self.inner.get(self.prefix + key, loader)

    async def invalidate(self, key: str) -> None:
        await self.inner.invalidate(self.prefix + key)

    async def aclose(self) -> None:
        await self.inner.aclose()
