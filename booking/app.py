"""The Starlette application factory: routes, error handlers, and the resources of its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.templating import Jinja2Templates

from booking.auth import authenticate
from booking.bearer_cache import BearerCache
from booking.bearer_lookup import BearerLookup
from booking.bearer_tokens import mac_key
from booking.bodylimit import BodyLimitMiddleware
from booking.cache import build_seat_cache
from booking.clientip import ClientIPMiddleware
from booking.core_services import install
from booking.db import create_pool
from booking.defence import build_defence
from booking.errors import EXCEPTION_HANDLERS
from booking.hold_batch import HoldBatcher
from booking.jobqueue import JobQueue
from booking.linestatus import LineStatusCache
from booking.metrics import HttpMetricsMiddleware
from booking.provider import open_provider
from booking.redis_clients import build_state_redis, close_state_redis
from booking.room_cache import RoomCache, listen
from booking.rooms import enabled_room_configs
from booking.routes import (
    account,
    admin,
    apidocs,
    events,
    health,
    operators,
    pages,
    reservations,
    session,
    users,
    waiting,
)
from booking.routes.queue_docs import document_waiting_room
from booking.services import Services, app_services
from booking.settings import Settings, gate_cookie_secure, load_settings
from booking.token_revocations import TokenRevocations
from booking.tracing import setup_tracing
from waitingroom import RoomConfig, WaitingRoom, build_routes, run_admitter
from waitingroom.gate import build_gate_routes
from waitingroom.signing import KeyRing
from waitingroom.token_routes import build_token_routes
from waitingroom.view import QueueView

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
        jobs = await run_in_threadpool(JobQueue.from_settings, settings)
        provider_pool, provider = await open_provider(settings, pool)
        room_cache = RoomCache(pool, settings.room_cache_seconds)
        started = Services(
            settings=settings,
            templates=templates,
            redis=redis_client,
            waiting_room=waiting_room,
            defence=defence,
            bearer_cache=BearerCache(settings.auth_cache_seconds),
            pool=pool,
            provider_pool=provider_pool,
            provider=provider,
            jobs=jobs,
            seat_cache=build_seat_cache(settings, redis_client),
            holds=HoldBatcher(pool, settings.hold_seconds, settings.max_seats_per_buyer),
            room_cache=room_cache,
            bearer_lookup=BearerLookup(pool),
            line_status=LineStatusCache(pool, redis_client, waiting_room.key_prefix),
            bearer_key=mac_key(settings.session_secret),
            token_revocations=TokenRevocations(pool, settings.auth_revocation_seconds),
        )
        install(app, started)
        stop = asyncio.Event()
        token_revocation_reader: asyncio.Task[None] | None = None
        if settings.auth_revocation_seconds > 0:
            token_revocation_reader = asyncio.create_task(started.token_revocations.run(stop))
        revocations = asyncio.create_task(
            waiting_room.revocations.run(redis_client, stop, waiting_room.revocation_channel)
        )
        listener = asyncio.create_task(listen(redis_client, room_cache, stop))
        admitter: asyncio.Task[None] | None = None
        if settings.admitter_enabled:
            admitter = asyncio.create_task(
                run_admitter(waiting_room, lambda: enabled_room_configs(pool), stop)
            )
        try:
            yield
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(listener, timeout=5)
            if admitter is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(admitter, timeout=5)
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(revocations, timeout=5)
            if token_revocation_reader is not None:
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(token_revocation_reader, timeout=5)
            install(app, None)
            await started.seat_cache.aclose()
            await close_state_redis(redis_client)
            if provider_pool is not pool:
                await provider_pool.close()
            await pool.close()
            jobs.close()

    async def get_room(event_id: str) -> RoomConfig | None:
        return await app_services(app).room_cache.config(int(event_id))

    async def authenticate_user(request: Request) -> str:
        return str(await authenticate(request))

    # The Redis client connects lazily, on the server's event loop, at first use.
    redis_client = build_state_redis(settings)
    signing_keys = KeyRing.from_config(
        settings.admission_signing_keys,
        settings.admission_retired_keys,
        dev_seed=settings.admission_secret,
    )
    waiting_room = WaitingRoom(
        redis_client,
        signing_keys,
        token_ttl_seconds=settings.admission_token_ttl_seconds,
        key_prefix=settings.redis_key_prefix,
        poll_limit_per_second=settings.poll_limit_per_second,
    )
    queue_view = QueueView(
        waiting_room,
        refresh_seconds=settings.queue_snapshot_seconds,
        max_age_seconds=settings.queue_snapshot_max_age_seconds,
    )
    defence = build_defence(settings, redis_client)
    waiting_room_routes = build_routes(
        waiting_room, get_room, authenticate_user, defence, queue_view
    )
    service_routes = [
        *build_token_routes(waiting_room),
        *build_gate_routes(
            waiting_room,
            get_room,
            templates,
            secure=gate_cookie_secure(settings),
            defence=defence,
        ),
    ]
    document_waiting_room([*waiting_room_routes, *service_routes])
    # Starlette tries routes in order: the surge's routes (queue polls) come first.
    route_list: list[BaseRoute] = [
        *waiting_room_routes,
        *health.routes,
        # Early in the list: Starlette tries routes in order, and these are the hot ones a
        # downstream service or the nginx gate calls on every request of an admitted buyer.
        *service_routes,
        *users.routes,
        *events.routes,
        *reservations.routes,
        *admin.routes,
        *operators.routes,
        *pages.routes,
        *session.routes,
        *account.routes,
        *waiting.routes,
        *apidocs.routes,
    ]
    app = Starlette(
        routes=route_list,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            Middleware(HttpMetricsMiddleware),
            Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
            Middleware(ClientIPMiddleware, trusted_proxies=settings.trusted_proxies),
        ],
        lifespan=lifespan,
    )
    if setup_tracing(settings):
        from booking.instrumentation import instrument_app

        instrument_app(app)
    return app
