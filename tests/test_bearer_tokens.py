"""Bearer tokens that name their user (booking/bearer_tokens.py): trusted without a lookup only
while fresh and only under our tag; everything else goes to the cache and PostgreSQL."""

from __future__ import annotations

import hashlib
import secrets

import asyncpg
import httpx

from booking.bearer_tokens import fresh_user, hash_token, issue, mac_key, stored_secret
from tests.conftest import bearer, make_user


async def revoke(db: asyncpg.Pool, user_id: int) -> None:
    await db.execute(
        "UPDATE users SET token_hash = $2 WHERE id = $1", user_id, secrets.token_bytes(32)
    )


KEY = mac_key("a-session-secret-of-at-least-32-bytes")
NOW = 1_800_000_000


def test_a_fresh_token_names_its_user() -> None:
    token = issue(KEY, 42, NOW, "s3cret")
    assert fresh_user(KEY, token, NOW + 59.9, 60.0) == 42
    assert fresh_user(KEY, token, NOW - 1, 60.0) == 42  # PostgreSQL's clock a little ahead


def test_a_token_is_trusted_alone_only_while_fresh() -> None:
    token = issue(KEY, 42, NOW, "s3cret")
    assert fresh_user(KEY, token, NOW + 60.0, 60.0) is None
    assert fresh_user(KEY, token, NOW - 60, 60.0) is None  # dated far in the future
    assert fresh_user(KEY, token, NOW, 0.0) is None  # AUTH_CACHE_SECONDS=0: always look up


def test_a_changed_or_foreign_token_is_not_trusted() -> None:
    token = issue(KEY, 42, NOW, "s3cret")
    prefix, user, issued, secret, tag = token.split(".")
    assert fresh_user(KEY, ".".join([prefix, "43", issued, secret, tag]), NOW, 60.0) is None
    assert fresh_user(KEY, ".".join([prefix, user, str(NOW + 1), secret, tag]), NOW, 60.0) is None
    assert fresh_user(KEY, ".".join([prefix, user, issued, "other", tag]), NOW, 60.0) is None
    assert fresh_user(mac_key("another-secret-another-secret-xx"), token, NOW, 60.0) is None
    assert fresh_user(KEY, "an-old-style-random-token", NOW, 60.0) is None
    assert fresh_user(KEY, "ft1.x.1.s.t", NOW, 60.0) is None


def test_the_database_keeps_the_hash_of_the_secret_part_only() -> None:
    token = issue(KEY, 42, NOW, "s3cret")
    assert stored_secret(token) == "s3cret"
    assert hash_token(token) == hashlib.sha256(b"s3cret").digest()
    assert (
        hash_token("an-old-style-random-token")
        == hashlib.sha256(b"an-old-style-random-token").digest()
    )


async def test_a_new_users_token_works_without_a_lookup_and_later_through_one(
    http: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await make_user(http, "Fresh")
    assert user["token"].startswith("ft1.")
    assert (await http.get("/api/users/me", headers=bearer(user))).status_code == 200
    # Revoke it in the database: while fresh, the tag alone vouches for it (the stated bound).
    await revoke(db, user["id"])
    assert (await http.get("/api/users/me", headers=bearer(user))).status_code == 200
    # An old-style token (no tag) is always looked up: revoked means refused at once.
    other = await make_user(http, "Legacy")
    secret = stored_secret(other["token"])
    await db.execute(
        "UPDATE users SET token_hash = $2 WHERE id = $1", other["id"], hash_token(secret)
    )
    legacy = {"Authorization": f"Bearer {secret}"}
    assert (await http.get("/api/users/me", headers=legacy)).status_code == 200
    await revoke(db, other["id"])
    # (the cache may still hold it for AUTH_CACHE_SECONDS: a new secret shows the lookup)
    await db.execute(
        "UPDATE users SET token_hash = $2 WHERE id = $1", other["id"], hash_token("renewed")
    )
    renewed = {"Authorization": "Bearer renewed"}
    assert (await http.get("/api/users/me", headers=renewed)).status_code == 200
    forged = ".".join([*user["token"].split(".")[:4], "AAAAAAAAAAAAAAAAAAAAAA"])
    assert (
        await http.get("/api/users/me", headers={"Authorization": f"Bearer {forged}"})
    ).status_code == 401
