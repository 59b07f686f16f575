"""Exceptions the routes (and the booking app) map to HTTP answers."""

from __future__ import annotations

from typing import Literal

# revoked: the admission this token stands for ended (completed, left, expired, superseded).
RejectionReason = Literal["forged", "expired", "wrong_event", "wrong_user", "revoked"]


class WaitingRoomError(Exception):
    """Base class of every waiting-room error."""


class RoomClosed(WaitingRoomError):
    """The event's waiting room is not enabled."""


class UnknownTicket(WaitingRoomError):
    """No such ticket for this event (never issued, or the user left/completed)."""


class PollRateLimited(WaitingRoomError):
    def __init__(self, retry_after_ms: int) -> None:
        super().__init__(f"polling too fast, retry after {retry_after_ms} ms")
        self.retry_after_ms = retry_after_ms


class TokenRejected(WaitingRoomError):
    """An admission token failed verification; `reason` says why (also a metric label)."""

    def __init__(self, reason: RejectionReason, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason: RejectionReason = reason


class JoinRefused(WaitingRoomError):
    """The bot defence's checks inside the join script refused it: `outcome` is 'limited'
    (the address's join limit; retry after `retry_after_ms`) or 'reused' (a spent PoW solution)."""

    def __init__(self, outcome: str, retry_after_ms: int) -> None:
        super().__init__(f"join refused: {outcome}")
        self.outcome = outcome
        self.retry_after_ms = retry_after_ms
