"""Values returned by the room."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["waiting", "admitted", "expired"]


@dataclass(frozen=True)
class Ticket:
    ticket: str
    # 1-based place in the queue; None while in the pre-queue (drawn at opening) or admitted.
    position: int | None
    status: Status
    eta_seconds: int | None = None
    pre_queue: bool = False
    created: bool = True  # False when an earlier ticket was returned (idempotent join)
    score: int = 0  # queue score (0 unless waiting in the queue); in-process views cache it


@dataclass(frozen=True)
class PollResult:
    status: Status
    position: int | None
    eta_seconds: int | None
    admission_token: str | None = None
    pre_queue: bool = False
    user_id: str | None = None
