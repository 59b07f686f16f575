"""Users: creation (with a one-time bearer token) and lookup."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from booking.bearer_tokens import hash_token, issue, new_token
from booking.domain_errors import EmailTaken, UserNotFound


@dataclass(frozen=True)
class NewUser:
    id: int
    name: str
    email: str
    token: str


async def create_user(pool: asyncpg.Pool, name: str, email: str, token_key: bytes) -> NewUser:
    """Insert the user with the hash of a fresh random secret; the token the user gets names
    the new id and is tagged with `token_key` (booking/bearer_tokens.py)."""
    secret = new_token()
    try:
        row = await pool.fetchrow(
            "INSERT INTO users (name, email, token_hash) VALUES ($1, $2, $3)"
            " RETURNING id, floor(extract(epoch FROM created_at))::bigint AS issued_at",
            name,
            email,
            hash_token(secret),
        )
    except asyncpg.UniqueViolationError as exc:
        raise EmailTaken(email) from exc
    assert row is not None
    token = issue(token_key, row["id"], row["issued_at"], secret)
    return NewUser(id=row["id"], name=name, email=email, token=token)


async def rotate_token(pool: asyncpg.Pool, user_id: int, token_key: bytes) -> tuple[str, int]:
    """A new token for the user; every earlier one is revoked (migration 009's trigger moves
    the user's `revoked_through`, and the new token is dated the second after it). Returns the
    token and that threshold."""
    secret = new_token()
    async with pool.acquire() as conn, conn.transaction():
        # The row lock held to the commit makes the threshold read next this rotation's own.
        changed = await conn.execute(
            "UPDATE users SET token_hash = $2 WHERE id = $1", user_id, hash_token(secret)
        )
        if changed != "UPDATE 1":
            raise UserNotFound(user_id)
        through = int(
            await conn.fetchval(
                "SELECT revoked_through FROM token_revocations WHERE user_id = $1", user_id
            )
        )
    return issue(token_key, user_id, through + 1, secret), through


async def get_user(pool: asyncpg.Pool, user_id: int) -> dict[str, object]:
    row = await pool.fetchrow(
        "SELECT id, name, email, created_at FROM users WHERE id = $1", user_id
    )
    if row is None:
        raise UserNotFound(user_id)
    return {
        "id": row["id"],
        "name": row["name"],
        "email": row["email"],
        "created_at": row["created_at"].isoformat(),
    }
