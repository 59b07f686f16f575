"""The web side's work after a hold, cancel or payment request committed in PostgreSQL.

Everything here is best effort (booking/besteffort.py) and has a repair path: the expiry entry
-> the full sweep (SWEEP_INTERVAL_SECONDS); the seat-map invalidation -> the cache's staleness
bound; the payment job -> the sweeper's rescue (PAYMENT_RESCUE_SECONDS); the refund of a
cancelled sale -> the sweeper's refund repair (the refund is owed in the database already).
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from booking.besteffort import best_effort
from booking.expiries import expiry_key, schedule_expiry, unschedule_expiry
from booking.holds import Hold
from booking.payments import settle_refund
from booking.seatmap import invalidate_seat_maps
from booking.services import Services
from booking.settings import Settings

log = logging.getLogger(__name__)


async def after_hold_committed(state: Services, settings: Settings, hold: Hold) -> None:
    key = expiry_key(settings.rq_queue)
    await best_effort(
        "hold expiry schedule",
        schedule_expiry(state.redis, key, hold.reservation_id, hold.expires_at),
    )
    await best_effort(
        "seat-map invalidation", invalidate_seat_maps(state.seat_cache, [hold.event_id])
    )


async def after_cancel_committed(
    state: Services, reservation_id: int, event_id: int, refund_payment: int | None
) -> None:
    if refund_payment is not None:
        try:
            async with state.pool.acquire() as conn:
                await settle_refund(conn, state.provider, refund_payment)
        except Exception:  # the sweeper refunds it (refund_due is committed)
            log.exception("refund of payment %s left to the sweeper", refund_payment)
    key = expiry_key(state.settings.rq_queue)
    await best_effort("hold expiry removal", unschedule_expiry(state.redis, key, reservation_id))
    await best_effort("seat-map invalidation", invalidate_seat_maps(state.seat_cache, [event_id]))


async def enqueue_payment(state: Services, payment_id: int, carrier: dict[str, str]) -> None:
    """Enqueue the payment job; if Redis refuses, the sweeper's rescue enqueues it later."""
    try:
        await run_in_threadpool(state.jobs.enqueue_payment, payment_id, carrier)
    except (RedisError, OSError) as exc:
        log.warning("payment %s not enqueued (the sweeper will): %r", payment_id, exc)
