"""Bearer tokens that name their user (booking/bearer_tokens.py): trusted without a lookup only
under our tag, and only while unrevoked (booking/token_revocations.py); everything else goes to
the cache and PostgreSQL. A live server: real PostgreSQL, real revocation reads."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time

import asyncpg
import httpx

from booking.bearer_tokens import (
    Tagged,
    hash_token,
    is_fresh,
    issue,
    mac_key,
    stored_secret,
    tagged,
)
from tests.conftest import bearer, make_user


async def revoke(db: asyncpg.Pool, user_id: int) -> None:
    await db.execute(
        "UPDATE users SET token_hash = $2 WHERE id = $1", user_id, secrets.token_bytes(32)
    )


KEY = mac_key("a-session-secret-of-at-least-32-bytes")
NOW = 1_800_000_000


def test_a_tagged_token_names_its_user_and_issue_second() -> None:
    token = issue(KEY, 42, NOW, "s3cret")
    assert tagged(KEY, token) == Tagged(42, NOW)


def test_fresh_means_issued_within_the_window_give_or_take_clock_skew() -> None:
    claim = Tagged(42, NOW)
    assert is_fresh(claim, NOW + 59.9, 60.0)
    assert is_fresh(claim, NOW - 1, 60.0)  # PostgreSQL's clock a little ahead
    assert not is_fresh(claim, NOW + 60.0, 60.0)
    assert not is_fresh(claim, NOW - 60, 60.0)  # dated far in the future
    assert not is_fresh(claim, NOW, 0.0)  # AUTH_CACHE_SECONDS=0: never fresh


def test_a_changed_or_foreign_token_is_not_trusted() -> None:
    token = issue(KEY, 42, NOW, "s3cret")
    prefix, user, issued, secret, tag = token.split(".")
    assert tagged(KEY, ".".join([prefix, "43", issued, secret, tag])) is None
    assert tagged(KEY, ".".join([prefix, user, str(NOW + 1), secret, tag])) is None
    assert tagged(KEY, ".".join([prefix, user, issued, "other", tag])) is None
    assert tagged(mac_key("another-secret-another-secret-xx"), token) is None
    assert tagged(KEY, "an-old-style-random-token") is None
    assert tagged(KEY, "ft1.x.1.s.t") is None


def test_the_database_keeps_the_hash_of_the_secret_part_only() -> None:
    token = issue(KEY, 42, NOW, "s3cret")
    assert stored_secret(token) == "s3cret"
    assert hash_token(token) == hashlib.sha256(b"s3cret").digest()
    assert (
        hash_token("an-old-style-random-token")
        == hashlib.sha256(b"an-old-style-random-token").digest()
    )


async def test_a_rotated_token_is_refused_at_once_and_the_new_one_works(
    http: httpx.AsyncClient,
) -> None:
    user = await make_user(http, "Rotating")
    assert user["token"].startswith("ft1.")
    assert (await http.get("/api/users/me", headers=bearer(user))).status_code == 200
    rotated = await http.post("/api/users/me/token", headers=bearer(user))
    assert rotated.status_code == 201, rotated.text
    assert rotated.headers["cache-control"] == "private, no-store"
    new = {"token": rotated.json()["token"]}
    assert new["token"] != user["token"]
    # The test server is one process: the one that rotated refuses the old token at once.
    old = await http.get("/api/users/me", headers=bearer(user))
    assert old.status_code == 401
    assert old.headers["content-type"] == "application/problem+json"
    me = await http.get("/api/users/me", headers=bearer(new))
    assert me.status_code == 200 and me.json()["id"] == user["id"]
    # Rotating again (within the same second, likely) revokes the second token too.
    again = await http.post("/api/users/me/token", headers=bearer(new))
    assert again.status_code == 201
    assert (await http.get("/api/users/me", headers=bearer(new))).status_code == 401
    newest = {"Authorization": f"Bearer {again.json()['token']}"}
    assert (await http.get("/api/users/me", headers=newest)).status_code == 200
    assert (await http.post("/api/users/me/token")).status_code == 401


async def test_a_token_revoked_in_the_database_is_refused_within_the_bound(
    http: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await make_user(http, "Revoked")
    assert (await http.get("/api/users/me", headers=bearer(user))).status_code == 200
    await revoke(db, user["id"])  # an operator's SQL: the trigger revokes earlier tokens
    # AUTH_REVOCATION_SECONDS (5 s) is the bound. The deadline is far above it, so that a busy
    # machine cannot fail the test, and below AUTH_CACHE_SECONDS (60 s), so that a server
    # without revocation reads (the tag vouching for a fresh token, then the lookup) cannot
    # pass it.
    deadline = time.monotonic() + 30
    while (await http.get("/api/users/me", headers=bearer(user))).status_code != 401:
        assert time.monotonic() < deadline, "a token revoked in the database is still accepted"
        await asyncio.sleep(0.2)


async def test_an_untagged_token_is_looked_up_and_a_forged_tag_refused(
    http: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await make_user(http, "Fresh")
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
    # A made-up secret under a made-up tag: vouched for by neither.
    prefix, user_id, issued, _, _ = user["token"].split(".")
    forged = ".".join([prefix, user_id, issued, secrets.token_urlsafe(32), "A" * 22])
    assert (
        await http.get("/api/users/me", headers={"Authorization": f"Bearer {forged}"})
    ).status_code == 401
