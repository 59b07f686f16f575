"""What a request handler may use, typed: the app's resources, built once by its lifespan.

`create_app` (booking/app.py) builds the parts its routes need before the server starts (settings,
the Redis client, the waiting room, ...) and, in its lifespan, opens the rest (the PostgreSQL
pools, the job queue, the caches) and stores one `Services` on the app. Handlers reach it through
`services(request)`; nothing else is kept on `app.state`. (The few modules below booking.errors
read its base, booking/core_services.py.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import BaseRoute

from booking.bearer_cache import BearerCache
from booking.bearer_lookup import BearerLookup
from booking.cache import SeatCache
from booking.core_services import CoreServices, find_core_services
from booking.hold_batch import HoldBatcher
from booking.linestatus import LineStatusCache
from booking.openapi import build_openapi
from booking.provider import PaymentProvider
from booking.room_cache import RoomCache
from booking.token_revocations import TokenRevocations
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
class Services(CoreServices):
    waiting_room: WaitingRoom
    defence: JoinDefence
    bearer_cache: BearerCache
    provider_pool: asyncpg.Pool  # `pool` itself unless PROVIDER_DATABASE_URL
    provider: PaymentProvider
    seat_cache: SeatCache
    holds: HoldBatcher  # the process's holds, sent to PostgreSQL in batches
    room_cache: RoomCache
    bearer_lookup: BearerLookup
    token_revocations: TokenRevocations  # lets tagged tokens skip the lookup for life
    line_status: LineStatusCache
    bearer_key: bytes  # tags the tokens users get (booking/bearer_tokens.py)
    openapi: OpenAPISchema = field(default_factory=OpenAPISchema)


def find_services(app: Starlette) -> Services | None:
    """The app's services, or None outside its lifespan (an app built without one, in tests)."""
    found = find_core_services(app)
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
