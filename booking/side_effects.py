"""The web side's work after a hold, cancel or payment request committed in PostgreSQL.

Everything here is best effort (booking/besteffort.py) and has a repair path: the seat-map
invalidation -> the cache's staleness bound; the payment job -> the sweeper's rescue
(PAYMENT_RESCUE_SECONDS); the refund of a cancelled sale -> the sweeper's refund repair (the
refund is owed in the database already).
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from booking.besteffort import best_effort
from booking.holds import Hold
from booking.payments import settle_refund
from booking.seatmap import invalidate_seat_maps, schedule_seat_map_invalidation
from booking.services import Services

log = logging.getLogger(__name__)


def after_hold_committed(state: Services, hold: Hold) -> None:
    # The seat map's invalidation goes out without holding up the 201 (one flush per burst of
    # holds; the staleness bound repairs a lost one). The expiry needs nothing: the workers
    # sweep PostgreSQL's expires_at (booking/holds.py).
    schedule_seat_map_invalidation(state.seat_cache, hold.event_id)


async def after_cancel_committed(
    state: Services, event_id: int, refund_payment: int | None
) -> None:
    if refund_payment is not None:
        try:
            async with state.pool.acquire() as conn:
                await settle_refund(conn, state.provider, refund_payment)
        except Exception:  # the sweeper refunds it (refund_due is committed)
            log.exception("refund of payment %s left to the sweeper", refund_payment)
    await best_effort("seat-map invalidation", invalidate_seat_maps(state.seat_cache, [event_id]))


async def enqueue_payment(state: Services, payment_id: int, carrier: dict[str, str]) -> None:
    """Enqueue the payment job; if Redis refuses, the sweeper's rescue enqueues it later."""
    try:
        await run_in_threadpool(state.jobs.enqueue_payment, payment_id, carrier)
    except (RedisError, OSError) as exc:
        log.warning("payment %s not enqueued (the sweeper will): %r", payment_id, exc)
