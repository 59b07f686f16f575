"""asyncpg pool, migrations (ordered plain-SQL files, applied once each) and database creation."""

from __future__ import annotations

import asyncio
from importlib import resources
from urllib.parse import urlsplit, urlunsplit

import asyncpg

MIGRATIONS_TABLE = "schema_migrations"
# Any constant works: it serialises concurrent `migrate` runs (several replicas starting at once).
MIGRATION_LOCK_ID = 7_201_001


def migration_files() -> list[tuple[str, str]]:
    """(name, sql) of every migration, in file-name order."""
    folder = resources.files("booking") / "migrations"
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(name, (folder / name).read_text(encoding="utf-8")) for name in names]


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply the migrations not applied yet; idempotent. Returns the names applied now."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch(f"SELECT name FROM {MIGRATIONS_TABLE}")}
        for name, sql in migration_files():
            if name in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} (name) VALUES ($1)", name)
            applied_now.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
    return applied_now


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def ensure_database(url: str) -> bool:
    """Create the database named in `url` if missing (connecting to `postgres`). True if created."""
    name = database_name(url)
    conn = await asyncpg.connect(with_database(url, "postgres"))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            return False
        return True
    finally:
        await conn.close()


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset hook: asyncpg still rolls back an open transaction before calling it.

    The default reset sends `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` on
    every release - a second round trip and transaction per query. Pooled connections never
    take advisory locks, open cursors, LISTEN or SET anything (migrations use their own
    connection), so there is nothing to reset.
    """


async def create_pool(url: str, min_size: int, max_size: int) -> asyncpg.Pool:
    from booking.metrics import instrument_connection

    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        command_timeout=30,
        init=instrument_connection,  # db_query_duration_seconds
        reset=_keep_session,
    )
    assert pool is not None
    return pool


async def migrate_url(url: str) -> list[str]:
    await ensure_database(url)
    conn = await asyncpg.connect(url)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


async def recreate_database(url: str) -> None:
    """Drop the database at `url` (closing its sessions) and build it anew from the migrations.

    For tests and experiments only: never pointed at a database whose data matters.
    """
    conn = await asyncpg.connect(with_database(url, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database_name(url)}" WITH (FORCE)')
    finally:
        await conn.close()
    await migrate_url(url)


def main() -> None:
    from booking.settings import load_settings

    settings = load_settings()
    applied = asyncio.run(migrate_url(settings.database_url))
    print(f"migrations applied: {applied or 'none (up to date)'}")


if __name__ == "__main__":
    main()
