"""Reservation status, payment (enqueued for the worker) and cancellation."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from booking import api_models as out
from booking import metrics
from booking.auth import authenticate
from booking.errors import Problem
from booking.openapi import Header, Operation, operation
from booking.requests import path_id
from booking.reservations import cancel_reservation, get_reservation, request_payment
from booking.services import services
from booking.side_effects import after_cancel_committed, enqueue_payment
from booking.tracing import current_carrier

MAX_IDEMPOTENCY_KEY = 200


@operation(
    Operation(
        "One of your reservations, with its payment", "reservations", out.Reservation, auth="user"
    )
)
async def get_reservation_route(request: Request) -> JSONResponse:
    reservation_id = path_id(request, "reservation_id")
    user_id = await authenticate(request)
    return JSONResponse(await get_reservation(services(request).pool, user_id, reservation_id))


@operation(
    Operation(
        "Pay for a hold (settled by a worker; poll the reservation)",
        "reservations",
        out.PaymentAccepted,
        202,
        auth="user",
        problems=(400, 409),
        headers=(Header("Idempotency-Key", "one per payment attempt", True, MAX_IDEMPOTENCY_KEY),),
    )
)
async def post_payment(request: Request) -> JSONResponse:
    reservation_id = path_id(request, "reservation_id")
    user_id = await authenticate(request)
    key = request.headers.get("idempotency-key", "").strip()
    if not key:
        raise Problem(400, "idempotency-key-required", "send an Idempotency-Key header")
    if len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise Problem(
            400, "idempotency-key-invalid", f"Idempotency-Key: 1..{MAX_IDEMPOTENCY_KEY} printable"
        )
    payment = await request_payment(
        services(request).pool,
        user_id,
        reservation_id,
        key,
        services(request).settings.payment_pending_max_seconds,
    )
    if payment.created:
        metrics.PAYMENTS_REQUESTED.inc()
        await enqueue_payment(services(request), payment.payment_id, current_carrier())
    return JSONResponse(
        {
            "payment_id": payment.payment_id,
            "reservation_id": reservation_id,
            "status": payment.status,
            "failure_reason": payment.failure_reason,
        },
        status_code=202,
        headers={"Location": f"/api/reservations/{reservation_id}"},
    )


@operation(
    Operation(
        "Cancel a hold, or refund a paid reservation",
        "reservations",
        out.Cancelled,
        auth="user",
        problems=(409,),
    )
)
async def delete_reservation(request: Request) -> JSONResponse:
    reservation_id = path_id(request, "reservation_id")
    user_id = await authenticate(request)
    result, refund_payment = await cancel_reservation(
        services(request).pool, user_id, reservation_id
    )
    if refund_payment is None:  # a hold; a paid reservation's cancellation is a refund instead
        metrics.HOLDS_CANCELLED.inc()
    # Committed: the client gets its 200; what follows is repaired later if it fails here.
    await after_cancel_committed(services(request), result["event_id"], refund_payment)
    return JSONResponse(result)


routes = [
    Route("/api/reservations/{reservation_id:int}", get_reservation_route, methods=["GET"]),
    Route("/api/reservations/{reservation_id:int}", delete_reservation, methods=["DELETE"]),
    Route("/api/reservations/{reservation_id:int}/payment", post_payment, methods=["POST"]),
]
