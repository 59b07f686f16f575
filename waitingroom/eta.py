"""Waiting-time estimates from the measured admission rate."""

from __future__ import annotations

import math

# Weight of the newest second in the EWMA of admissions per second (kept in Redis by the
# admission script). 0.3 follows a changed rate within a few seconds without jitter.
EWMA_ALPHA = 0.3
# Floor so a stalled room (active set full, nobody completing) yields a large but finite ETA.
MIN_RATE = 0.1


def parse_rate(raw: str | bytes | float | None, fallback: float) -> float:
    """The measured admissions per second, or `fallback` (admit_per_second) if none yet."""
    if raw is None or raw == b"" or raw == "":
        return float(fallback)
    try:
        return float(raw)
    except (TypeError, ValueError):
        return float(fallback)


def eta_seconds(position: int, rate: float) -> int:
    """Seconds until a user at 1-based `position` is admitted at `rate` admissions/s."""
    if position <= 0:
        return 0
    return math.ceil(position / max(rate, MIN_RATE))


def pre_queue_eta_seconds(now: float, opens_at: float, pre_count: int, rate: float) -> int:
    """Pre-queue places are drawn at opening: expect the middle of the pre-queue."""
    until_open = max(0.0, opens_at - now)
    return math.ceil(until_open) + eta_seconds(math.ceil((pre_count + 1) / 2), rate)
