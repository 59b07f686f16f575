"""Cache parameters and the freshness rules every Redis-backed strategy applies.

Staleness contract (SEAT_CACHE_STALE_BOUND_SECONDS = B): no strategy ever serves a value whose
database read began more than B seconds ago. That alone bounds how late a hold/sale shows up: a
read at time t returns data read at or after t - B, so any change committed before t - B is in it,
whether or not its invalidation arrived. Invalidation makes changes show up sooner: it records a
watermark, and values read before the watermark are no longer fresh (ttl, singleflight and
xfetch-pure also delete them; lock, xfetch and swr keep them as stale-but-servable copies while one
recomputes, still only up to age B). The freshness TTL is therefore capped at B, and
lock/xfetch/swr have a stale window only when B > TTL; with B == TTL their waiters wait for the
one recomputation.
"""

from __future__ import annotations

from dataclasses import dataclass

from booking.cache.envelope import Envelope
from booking.settings import Settings

# Extra physical lifetime in Redis past the last moment a value may be served, so a value is
# never dropped by Redis before the read path decides about it (XFetch: physical > logical TTL).
RETAIN_MARGIN_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class CacheConfig:
    ttl: float  # freshness, seconds
    stale_bound: float  # B above, seconds
    jitter: float = 0.0  # fraction of the TTL randomly cut off, spreads expiries of many keys
    lock_ttl: float = 5.0  # seconds a lock/refresh guard lives if its holder dies
    xfetch_beta: float = 1.0
    invalidate_on_write: bool = True

    def __post_init__(self) -> None:
        if self.ttl <= 0 or self.stale_bound <= 0 or self.lock_ttl <= 0:
            raise ValueError("seat cache TTL, stale bound and lock TTL must be positive")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError("SEAT_CACHE_TTL_JITTER is a fraction of the TTL in [0, 1)")
        if self.xfetch_beta <= 0:
            raise ValueError("SEAT_CACHE_XFETCH_BETA must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> CacheConfig:
        return cls(
            ttl=settings.seat_cache_ttl_seconds,
            stale_bound=settings.seat_cache_stale_bound_seconds,
            jitter=settings.seat_cache_ttl_jitter,
            lock_ttl=settings.seat_cache_lock_ttl_ms / 1000.0,
            xfetch_beta=settings.seat_cache_xfetch_beta,
            invalidate_on_write=settings.seat_cache_invalidate_on_write,
        )

    def fresh_until(self, created_at: float, stored_at: float, u: float) -> float:
        """Logical expiry; `u` in [0, 1) draws the jitter. Never past created_at + B."""
        ttl = self.ttl * (1.0 - self.jitter * u)
        return min(stored_at + ttl, created_at + self.stale_bound)

    def is_fresh(self, env: Envelope, now: float, invalidated_at: float) -> bool:
        # Strictly after the watermark: a load begun before invalidating may predate the write.
        return now < env.fresh_until and env.created_at > invalidated_at

    def is_servable(self, env: Envelope, now: float) -> bool:
        return env.age(now) <= self.stale_bound

    def retain_seconds(self) -> float:
        """Longest any value (or invalidation watermark) needs to stay in Redis."""
        return max(self.ttl, self.stale_bound) + RETAIN_MARGIN_SECONDS
