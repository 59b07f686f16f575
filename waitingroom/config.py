"""Per-event waiting-room settings (owned by the caller; the room never stores them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class RoomConfig:
    event_id: str
    enabled: bool
    admit_per_second: int
    max_active: int
    admission_window_seconds: int
    # Joiners before this instant form a pre-queue that is shuffled at opening.
    # Must be timezone-aware; naive datetimes are read as UTC.
    sale_opens_at: datetime | None = None
    # For display only (the waiting page): admission itself reads the room's pause key.
    paused: bool = False
    # Leading zero bits a join's proof of work must have (waitingroom/pow.py); 0 = no PoW.
    pow_difficulty: int = 0

    def __post_init__(self) -> None:
        # Normalise so `RoomConfig(event_id=7, ...)` still yields the same Redis keys.
        object.__setattr__(self, "event_id", str(self.event_id))
        if self.admit_per_second < 0 or self.max_active < 0:
            raise ValueError("admit_per_second and max_active must be >= 0")
        if self.admission_window_seconds <= 0:
            raise ValueError("admission_window_seconds must be > 0")

    def opens_at_ms(self) -> int:
        """Opening time in epoch milliseconds, or -1 when there is no pre-queue."""
        if self.sale_opens_at is None:
            return -1
        opens = self.sale_opens_at
        if opens.tzinfo is None:
            opens = opens.replace(tzinfo=UTC)
        return int(opens.timestamp() * 1000)
