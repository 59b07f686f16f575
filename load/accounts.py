"""Buyer accounts for the experiments, straight into PostgreSQL in one statement, with the bearer
tokens `POST /api/users` would have issued (booking/users.py, booking/bearer_tokens.py).

The services the harness starts run with the development SESSION_SECRET, which keys the tokens'
tag; under another secret the tokens still work, by a lookup of their secret's hash.
"""

from __future__ import annotations

import uuid

import asyncpg

from booking.bearer_tokens import hash_token, issue, mac_key, new_token
from booking.settings import ENV_DEFAULTS

TOKEN_KEY = mac_key(ENV_DEFAULTS["SESSION_SECRET"])


async def insert_users(conn: asyncpg.Connection, count: int, name: str) -> list[tuple[int, str]]:
    """`count` users called `name` (emails unique per call); (user id, bearer token) pairs in
    insertion order."""
    secrets = [new_token() for _ in range(count)]
    rows = await conn.fetch(
        "INSERT INTO users (name, email, token_hash)"
        " SELECT $1, 'load.' || $2 || '.' || i || '@example.com', h"
        " FROM unnest($3::bytea[]) WITH ORDINALITY AS t(h, i)"
        " RETURNING id, token_hash, floor(extract(epoch FROM created_at))::bigint AS issued",
        name,
        uuid.uuid4().hex,
        [hash_token(s) for s in secrets],
    )
    by_hash = {bytes(r["token_hash"]): (int(r["id"]), int(r["issued"])) for r in rows}
    users = []
    for secret in secrets:
        user_id, issued = by_hash[hash_token(secret)]
        users.append((user_id, issue(TOKEN_KEY, user_id, issued, secret)))
    return users


async def create_users(database_url: str, count: int, name: str) -> list[tuple[int, str]]:
    """`insert_users` on a connection of its own."""
    conn = await asyncpg.connect(database_url)
    try:
        return await insert_users(conn, count, name)
    finally:
        await conn.close()
