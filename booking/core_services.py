"""The part of the app's services the lowest web modules use: settings, templates, the pool, Redis
and the job queue.

Sessions, the not-found page and the metrics endpoint sit below `booking.errors` in the import
graph (tests/test_imports.py forbids cycles), so they cannot name `booking.services.Services`,
whose caches import the errors. They read the same object through this base class instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request

if TYPE_CHECKING:
    import asyncpg
    from redis.asyncio import Redis
    from starlette.templating import Jinja2Templates

    from booking.jobqueue import JobQueue
    from booking.settings import Settings


@dataclass(frozen=True)
class CoreServices:
    settings: Settings
    templates: Jinja2Templates
    redis: Redis  # the state Redis (a RedisCluster on a cluster, same interface)
    pool: asyncpg.Pool
    jobs: JobQueue


def install(app: Starlette, found: CoreServices | None) -> None:
    """Make `found` the app's services (None: the lifespan ended, handlers get none)."""
    app.state.services = found


def find_core_services(app: Starlette) -> CoreServices | None:
    """The app's services, or None outside its lifespan (an app built without one, in tests)."""
    found = getattr(app.state, "services", None)
    return found if isinstance(found, CoreServices) else None


def core_services(request: Request) -> CoreServices:
    """The core of the services of the app serving `request`."""
    found = find_core_services(request.app)
    if found is None:
        raise RuntimeError("the app's lifespan has not started: it has no services yet")
    return found
