# ruff: noqa: F811  (pytest fixtures imported from test_waitingroom)
"""Ed25519 admission tokens: key rotation window, short lifetime re-issued by the poll, and the
operator pause read inside the admission script (real Redis, injected clock)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import jwt
import pytest
from redis.asyncio import Redis

# The fixtures of the waiting-room tests (their own Redis db, flushed per test).
from tests.test_waitingroom import T0, FakeClock, cfg, clock, redis, room  # noqa: F401
from waitingroom import TokenRejected, WaitingRoom
from waitingroom.keys import RoomKeys
from waitingroom.signing import KeyRing, b64url_encode, generate_entry, main
from waitingroom.tokens import TokenSigner

K1, K1_PUB = generate_entry("k1")
K2, K2_PUB = generate_entry("k2")


def _token(ring: KeyRing, clk: FakeClock, exp: float) -> str:
    return TokenSigner(ring, clk).issue("alice", "7", "tick-1", int(exp * 1000))


def _accepts(ring: KeyRing, clk: FakeClock, token: str) -> bool:
    try:
        TokenSigner(ring, clk).decode(token)
    except TokenRejected as exc:
        assert exc.reason == "forged"
        return False
    return True


def test_rotation_old_and_new_both_valid_during_the_window() -> None:
    clk = FakeClock()
    before = KeyRing.from_config(K1)  # k1 signs
    # Step 1: publish k2 before it signs, so every verifier's cached key set knows it in time.
    prepublish = KeyRing.from_config(f"{K1},{K2}")
    # Step 2: k2 signs; k1 is retired but accepted until the end of the window.
    until = T0 + 120
    rotated = KeyRing.from_config(K2, f"k1={K1_PUB}@{until:.0f}")

    old = _token(before, clk, T0 + 600)
    new = _token(rotated, clk, T0 + 600)
    assert jwt.get_unverified_header(old)["kid"] == "k1"
    assert jwt.get_unverified_header(new)["kid"] == "k2"
    # During the window every configuration (replicas roll over one at a time) accepts both...
    for ring in (prepublish, rotated):
        assert _accepts(ring, clk, old) and _accepts(ring, clk, new)
    assert not _accepts(before, clk, new)  # (why k2 is published a step ahead)
    kids = [k["kid"] for k in rotated.jwks(clk())["keys"]]
    assert kids == ["k2", "k1"]

    # ...after it the retired key is neither accepted nor published.
    clk.advance(120)
    assert not _accepts(rotated, clk, old)
    assert _accepts(rotated, clk, _token(rotated, clk, T0 + 600))
    assert [k["kid"] for k in rotated.jwks(clk())["keys"]] == ["k2"]


def test_jwks_publishes_public_keys_only_and_dev_key_is_marked() -> None:
    ring = KeyRing.from_config(f"{K1},{K2}")
    jwks = ring.jwks(T0)
    assert [k["kid"] for k in jwks["keys"]] == ["k1", "k2"]
    assert {k["x"] for k in jwks["keys"]} == {K1_PUB, K2_PUB}
    assert all(set(k) == {"kty", "crv", "alg", "use", "kid", "x"} for k in jwks["keys"])
    assert not ring.dev_only
    dev = KeyRing.from_config("", dev_seed="some seed")
    assert dev.dev_only and dev.signer_kid.startswith("dev-")
    # Deterministic: every process of a development setup derives the same key.
    assert KeyRing.development("some seed").signer_kid == dev.signer_kid
    assert KeyRing.development("other").signer_kid != dev.signer_kid


@pytest.mark.parametrize(
    ("signing", "retired", "message"),
    [
        ("k1=", "", "kid=value"),
        ("=abc", "", "kid=value"),
        ("k1", "", "32-byte"),  # a bare value is a seed: this one is not
        ("k1=" + b64url_encode(b"short"), "", "32-byte"),
        ("k1=!!!", "", "32-byte|base64url"),
        (f"{K1},{K1}", "", "unique"),
        (K2, f"k1={K1_PUB}", "epoch"),
        (K2, f"k1={K1_PUB}@soon", "malformed"),
        ("", f"k1={K1_PUB}@1", "signing key"),
    ],
)
def test_bad_key_configuration_is_refused_at_startup(
    signing: str, retired: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        KeyRing.from_config(signing, retired, dev_seed="x")


def test_a_bare_seed_gets_a_stable_kid() -> None:
    seed = K1.split("=", 1)[1]
    ring = KeyRing.from_config(seed)
    assert (
        ring.signer_kid.startswith("k-") and ring.signer_kid == KeyRing.from_config(seed).signer_kid
    )
    assert [k["x"] for k in ring.jwks(T0)["keys"]] == [K1_PUB]


def test_key_generator_prints_a_usable_entry() -> None:
    lines: list[str] = []
    assert main(["signing", "kx"], lines.append) == 0
    entry = lines[0].split(": ", 1)[1]
    assert KeyRing.from_config(entry).signer_kid == "kx"


async def test_token_lives_ttl_and_the_poll_reissues_it_while_admitted(
    redis: Redis,
    clock: FakeClock,
) -> None:
    ttl_room = WaitingRoom(
        redis,
        "s",
        clock=clock,
        rng=random.Random(1),
        token_ttl_seconds=60,
        poll_limit_per_second=99,
    )
    config = cfg("40", aps=5, window=600)
    ticket = (await ttl_room.join(config, "alice")).ticket
    await ttl_room.admit_tick(config)
    first = (await ttl_room.poll(config, ticket)).admission_token
    assert first is not None
    claims = ttl_room.signer.decode(first)
    assert claims.expires_at == int(T0) + 60  # the token, not the 600 s admission
    clock.advance(50)
    second = (await ttl_room.poll(config, ticket)).admission_token
    assert second is not None and ttl_room.signer.decode(second).expires_at == int(T0) + 110
    clock.advance(15)
    with pytest.raises(TokenRejected) as info:
        await ttl_room.verify(first)
    assert info.value.reason == "expired"
    assert (await ttl_room.verify(second, "40")).user_id == "alice"
    # Near the end of the admission the token ends with it, never later.
    clock.advance(500)
    last = (await ttl_room.poll(config, ticket)).admission_token
    assert last is not None and ttl_room.signer.decode(last).expires_at == int(T0) + 600


async def test_pause_is_read_inside_the_admission_step(
    room: WaitingRoom,
    redis: Redis,
    clock: FakeClock,
) -> None:
    config = cfg("41", aps=2, window=60)  # the config itself never says "paused"
    tickets = [(await room.join(config, f"u{i}")).ticket for i in range(5)]
    await room.set_paused("41", True)
    for _ in range(3):
        assert await room.admit_tick(config) == []
        clock.advance(1)
    positions = [(await room.poll(config, t)).position for t in tickets]
    assert positions == [1, 2, 3, 4, 5]  # places kept
    assert await redis.hget(RoomKeys("41").rate, "ewma") is None  # paused seconds not measured
    await room.set_paused("41", False)
    assert await room.admit_tick(config) == ["u0", "u1"]
    clock.advance(1)
    assert await room.admit_tick(config) == ["u2", "u3"]
    # A close/reopen (reset) keeps the pause flag, like the database copy.
    await room.set_paused("41", True)
    await room.reset("41")
    assert await redis.exists(RoomKeys("41").paused) == 1


async def test_revocation_feed_answers_from_memory_once_trusted(
    redis: Redis, clock: FakeClock
) -> None:
    feed_room = WaitingRoom(redis, "s", clock=clock, token_ttl_seconds=60, poll_limit_per_second=99)
    config = cfg("42", aps=5, window=600)
    tickets = {u: (await feed_room.join(config, u)).ticket for u in ("alice", "bob", "carol")}
    await feed_room.admit_tick(config)
    tokens = {}
    for user, ticket in tickets.items():
        token = (await feed_room.poll(config, ticket)).admission_token
        assert token is not None
        tokens[user] = token
    stop = asyncio.Event()
    task = asyncio.create_task(feed_room.revocations.run(redis, stop))
    try:
        # Subscribed, but not yet for a whole token lifetime: answers come from Redis.
        await _until(lambda: feed_room.revocations._since is not None)
        assert feed_room.revocations.revoked("42", tickets["alice"], T0) is None
        await feed_room.leave("42", "carol")
        with pytest.raises(TokenRejected, match="no longer active"):
            await feed_room.verify(tokens["carol"])

        clock.advance(30)
        fresh = {
            u: (await feed_room.poll(config, tickets[u])).admission_token for u in ("alice", "bob")
        }
        clock.advance(31)
        assert feed_room.revocations.trusted()
        alice, bob = fresh["alice"], fresh["bob"]
        assert alice is not None and bob is not None
        assert (await feed_room.verify(alice)).user_id == "alice"
        await feed_room.complete("42", "bob")  # the remove script publishes the revocation
        await _until(lambda: feed_room.revocations.revoked("42", tickets["bob"], T0) is True)
        with pytest.raises(TokenRejected) as info:
            await feed_room.verify(bob)
        assert info.value.reason == "revoked"
        assert (await feed_room.verify(alice)).user_id == "alice"
        await feed_room.reset("42")  # closing the sale ends every admission
        await _until(lambda: feed_room.revocations.revoked("42", "any", T0 + 61) is True)
        with pytest.raises(TokenRejected):
            await feed_room.verify(alice)
        # A lost subscription is not trusted again until a whole token lifetime later.
        feed_room.revocations.mark_down()
        assert feed_room.revocations.revoked("42", tickets["bob"], T0) is None
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


async def _until(predicate: Callable[[], bool]) -> None:
    for _ in range(100):  # hang guard: 10 s
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in 10 s")
