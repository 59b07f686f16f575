"""The one place a hold checks the waiting room's admission token."""

from __future__ import annotations

from starlette.requests import Request

from booking.domain_errors import AdmissionRejected, AdmissionRequired
from booking.services import services
from waitingroom import RoomConfig, TokenRejected

ADMISSION_HEADER = "x-admission-token"


async def require_admission(request: Request, user_id: int, config: RoomConfig) -> None:
    """AdmissionRequired or AdmissionRejected (403) unless the event has no waiting room or the
    request carries a valid admission token for this user and this event."""
    if not config.enabled:
        return
    token = request.headers.get(ADMISSION_HEADER, "")
    if not token:
        raise AdmissionRequired()
    try:
        await services(request).waiting_room.verify_token(token, user_id, config.event_id)
    except TokenRejected as exc:
        raise AdmissionRejected(exc.reason) from exc
