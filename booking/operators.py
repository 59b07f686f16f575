"""Operators: their own bearer tokens (ADMIN_TOKEN bootstraps the first), and the record of every
operator action (who, when, what, before/after) in PostgreSQL."""

from __future__ import annotations

import hmac
import json
from typing import Any

import asyncpg
from starlette.requests import Request

from booking.auth import bearer_token
from booking.bearer_tokens import hash_token, new_token
from booking.domain_errors import NotAnOperator, OperatorExists, OperatorNotFound
from booking.services import services

# The name actions taken with the bootstrap ADMIN_TOKEN are recorded under.
BOOTSTRAP_OPERATOR = "admin-token"


async def require_operator(request: Request) -> str:
    """The name of the operator whose token came with the request; 401 without one, 403 else."""
    token = bearer_token(request)
    expected: str = services(request).settings.admin_token
    if expected and hmac.compare_digest(token.encode(), expected.encode()):
        return BOOTSTRAP_OPERATOR
    pool: asyncpg.Pool = services(request).pool
    name = await pool.fetchval(
        "SELECT name FROM operators WHERE token_hash = $1 AND revoked_at IS NULL",
        hash_token(token),
    )
    if name is None:
        raise NotAnOperator()
    return str(name)


async def create_operator(pool: asyncpg.Pool, name: str, created_by: str) -> dict[str, Any]:
    """A new operator and its token (shown once; only its hash is stored)."""
    token = new_token()
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "INSERT INTO operators (name, token_hash, created_by) VALUES ($1, $2, $3)"
            " ON CONFLICT (name) DO NOTHING RETURNING id, name, created_at",
            name,
            hash_token(token),
            created_by,
        )
        if row is None:
            raise OperatorExists(name)
        await record(conn, created_by, "operator.create", None, None, {"name": name})
    return {"id": row["id"], "name": row["name"], "token": token}


async def revoke_operator(pool: asyncpg.Pool, name: str, revoked_by: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        updated = await conn.fetchval(
            "UPDATE operators SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL"
            " RETURNING id",
            name,
        )
        if updated is None:
            raise OperatorNotFound(name)
        await record(conn, revoked_by, "operator.revoke", None, {"name": name}, None)


async def list_operators(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT name, created_by, created_at, revoked_at FROM operators ORDER BY id"
    )
    return [
        {
            "name": r["name"],
            "created_by": r["created_by"],
            "created_at": r["created_at"].isoformat(),
            "revoked": r["revoked_at"] is not None,
        }
        for r in rows
    ]


async def record(
    conn: asyncpg.Connection | asyncpg.Pool,
    operator: str,
    action: str,
    event_id: int | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    await conn.execute(
        "INSERT INTO operator_actions (operator, action, event_id, before, after)"
        " VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)",
        operator,
        action,
        event_id,
        None if before is None else json.dumps(before, default=str),
        None if after is None else json.dumps(after, default=str),
    )


async def recent_actions(pool: asyncpg.Pool, limit: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT id, operator, at, action, event_id, before::text, after::text"
        " FROM operator_actions ORDER BY at DESC, id DESC LIMIT $1",
        limit,
    )
    return [
        {
            "id": r["id"],
            "operator": r["operator"],
            "at": r["at"].isoformat(),
            "action": r["action"],
            "event_id": r["event_id"],
            "before": None if r["before"] is None else json.loads(r["before"]),
            "after": None if r["after"] is None else json.loads(r["after"]),
        }
        for r in rows
    ]
