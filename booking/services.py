"""What a request handler may use, typed: the app's resources, built once by its lifespan.

`create_app` (booking/app.py) builds the parts its routes need before the server starts (settings,
the Redis client, the waiting room, ...) and, in its lifespan, opens the rest (the PostgreSQL
pools, the job queue, the caches) and stores one `Services` on the app. Handlers reach it through
`services(request)`; nothing else is kept on `app.state`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import BaseRoute

from booking.openapi import build_openapi

if TYPE_CHECKING:  # field types only: importing them here would cycle through booking.errors
    import asyncpg
    from redis.asyncio import Redis
    from starlette.templating import Jinja2Templates

    from booking.bearer_cache import BearerCache
    from booking.bearer_lookup import BearerLookup
    from booking.cache import SeatCache
    from booking.jobqueue import JobQueue
    from booking.linestatus import LineStatusCache
    from booking.provider import PaymentProvider
    from booking.room_cache import RoomCache
    from booking.settings import Settings
    from waitingroom import WaitingRoom
    from waitingroom.defence import JoinDefence

API_TITLE = "Flash-sale ticketing API"
API_VERSION = "1.0.0"


class OpenAPISchema:
    """The app's OpenAPI schema, built at first use (the routes do not change while it runs)."""

    def __init__(self) -> None:
        self._schema: dict[str, Any] | None = None

    def get(self, routes: list[BaseRoute]) -> dict[str, Any]:
        if self._schema is None:
            self._schema = build_openapi(routes, API_TITLE, API_VERSION)
        return self._schema


@dataclass(frozen=True)
class Services:
    settings: Settings
    templates: Jinja2Templates
    redis: Redis  # the state Redis (a RedisCluster on a cluster, same interface)
    waiting_room: WaitingRoom
    defence: JoinDefence
    bearer_cache: BearerCache
    pool: asyncpg.Pool
    provider_pool: asyncpg.Pool  # `pool` itself unless PROVIDER_DATABASE_URL
    provider: PaymentProvider
    jobs: JobQueue
    seat_cache: SeatCache
    room_cache: RoomCache
    bearer_lookup: BearerLookup
    line_status: LineStatusCache
    openapi: OpenAPISchema = field(default_factory=OpenAPISchema)


def install(app: Starlette, found: Services | None) -> None:
    """Make `found` the app's services (None: the lifespan ended, handlers get none)."""
    app.state.services = found


def find_services(app: Starlette) -> Services | None:
    """The app's services, or None outside its lifespan (an app built without one, in tests)."""
    found = getattr(app.state, "services", None)
    return found if isinstance(found, Services) else None


def app_services(app: Starlette) -> Services:
    """The app's services, inside its lifespan."""
    found = find_services(app)
    if found is None:
        raise RuntimeError("the app's lifespan has not started: it has no services yet")
    return found


def services(request: Request) -> Services:
    """The services of the app serving `request`."""
    return app_services(request.app)
