"""Each process's copy of the token revocations (booking/token_revocations.py): what one read
sees, how long the copy may vouch, and what a late commit or a failing read does. Real
PostgreSQL (the rotation's trigger, migration 009); injected clock."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
from prometheus_client import REGISTRY

from booking.bearer_tokens import Tagged, mac_key, tagged
from booking.token_revocations import FULL_READ_SECONDS, LOOKBACK_SECONDS, TokenRevocations
from booking.users import create_user, rotate_token

KEY = mac_key("a-session-secret-of-at-least-32-bytes")
BOUND = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FlakyPool:
    """The real pool, or an OSError when told to fail (PostgreSQL away)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.failing = False

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        if self.failing:
            raise OSError("connection refused")
        return list(await self.pool.fetch(query, *args))


async def new_user(db: asyncpg.Pool) -> Tagged:
    user = await create_user(db, "Revocations", f"{uuid.uuid4().hex[:12]}@example.com", KEY)
    claim = tagged(KEY, user.token)
    assert claim is not None
    return claim


async def rotate(db: asyncpg.Pool, claim: Tagged) -> Tagged:
    token, _ = await rotate_token(db, claim.user_id, KEY)
    new = tagged(KEY, token)
    assert new is not None and new.user_id == claim.user_id
    return new


async def test_the_copy_vouches_only_within_the_bound_of_its_last_read(db: asyncpg.Pool) -> None:
    clock = Clock()
    revocations = TokenRevocations(db, BOUND, clock)
    assert not revocations.current()  # no read yet: tags vouch only while fresh
    await revocations.refresh()
    assert revocations.current()
    clock.now += BOUND - 0.01
    assert revocations.current()
    clock.now += 0.01
    assert not revocations.current()
    await revocations.refresh()
    assert revocations.current()


async def test_a_rotation_revokes_every_earlier_token_and_not_the_new_one(
    db: asyncpg.Pool,
) -> None:
    revocations = TokenRevocations(db, BOUND, Clock())
    first = await new_user(db)
    other = await new_user(db)
    await revocations.refresh()
    assert not revocations.revoked(first)
    second = await rotate(db, first)
    third = await rotate(db, second)  # most likely within the same second
    assert first.issued_at < second.issued_at < third.issued_at
    await revocations.refresh()
    assert revocations.revoked(first) and revocations.revoked(second)
    assert not revocations.revoked(third)
    assert not revocations.revoked(other)


async def test_an_operators_sql_revokes_through_the_trigger(db: asyncpg.Pool) -> None:
    revocations = TokenRevocations(db, BOUND, Clock())
    claim = await new_user(db)
    await revocations.refresh()
    await db.execute("UPDATE users SET name = 'renamed' WHERE id = $1", claim.user_id)
    await revocations.refresh()
    assert not revocations.revoked(claim)  # other columns revoke nothing
    await db.execute(
        "UPDATE users SET token_hash = $2 WHERE id = $1", claim.user_id, uuid.uuid4().bytes * 2
    )
    await revocations.refresh()
    assert revocations.revoked(claim)


async def test_a_revocation_committed_after_a_later_one_was_read_is_still_seen(
    db: asyncpg.Pool,
) -> None:
    clock = Clock()
    revocations = TokenRevocations(db, BOUND, clock)
    early = await new_user(db)
    late = await new_user(db)
    await rotate(db, late)
    await revocations.refresh()  # whole table; the latest revocation read is `late`'s
    seen = await db.fetchval(
        "SELECT revoked_at FROM token_revocations WHERE user_id = $1", late.user_id
    )
    # `early`'s revocation started before `late`'s but commits only now: its timestamp is
    # older than the latest read, within the lookback.
    await rotate(db, early)
    await db.execute(
        "UPDATE token_revocations SET revoked_at = $2 WHERE user_id = $1",
        early.user_id,
        seen - timedelta(seconds=LOOKBACK_SECONDS / 2),
    )
    clock.now += 1
    await revocations.refresh()  # a read of the recent rows only
    assert revocations.revoked(early)


async def test_the_whole_table_is_read_again_in_time(db: asyncpg.Pool) -> None:
    clock = Clock()
    revocations = TokenRevocations(db, BOUND, clock)
    seen = await new_user(db)
    await rotate(db, seen)
    await revocations.refresh()
    latest = await db.fetchval("SELECT max(revoked_at) FROM token_revocations")
    # A revocation dated beyond the lookback (a transaction held open for minutes):
    lost = await new_user(db)
    await rotate(db, lost)
    await db.execute(
        "UPDATE token_revocations SET revoked_at = $2 WHERE user_id = $1",
        lost.user_id,
        latest - timedelta(seconds=LOOKBACK_SECONDS * 2),
    )
    clock.now += 1
    await revocations.refresh()
    assert not revocations.revoked(lost)  # the recent-rows read misses it ...
    clock.now += FULL_READ_SECONDS
    await revocations.refresh()
    assert revocations.revoked(lost)  # ... the next whole read does not


async def test_failing_reads_stop_the_copy_vouching_and_the_reader_goes_on(
    db: asyncpg.Pool,
) -> None:
    clock = Clock()
    pool = FlakyPool(db)
    revocations = TokenRevocations(pool, 0.05, clock)  # type: ignore[arg-type]
    stop = asyncio.Event()
    reader = asyncio.create_task(revocations.run(stop))
    try:
        for _ in range(200):
            if revocations.current():
                break
            await asyncio.sleep(0.01)
        assert revocations.current()
        failed_before = REGISTRY.get_sample_value("token_revocation_reads_failed_total") or 0.0
        pool.failing = True
        await asyncio.sleep(0.05)  # reads fail from here on
        clock.now += 1.0  # past the bound since the last good read started
        assert not revocations.current()
        for _ in range(200):
            failed = REGISTRY.get_sample_value("token_revocation_reads_failed_total") or 0.0
            if failed > failed_before:
                break
            await asyncio.sleep(0.01)
        assert failed > failed_before, "failed reads are counted"
        assert not reader.done()
        pool.failing = False
        for _ in range(200):
            if revocations.current():
                break
            await asyncio.sleep(0.01)
        assert revocations.current(), "the reader did not recover"
    finally:
        stop.set()
        await asyncio.wait_for(reader, timeout=5)


async def test_a_bound_of_zero_never_vouches(db: asyncpg.Pool) -> None:
    revocations = TokenRevocations(db, 0.0, Clock())  # AUTH_REVOCATION_SECONDS=0
    await revocations.refresh()
    assert not revocations.current()
