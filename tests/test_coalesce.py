"""booking.coalesce: concurrent submits share a flush, and each waits for one that started
after it arrived."""

from __future__ import annotations

import asyncio

import pytest

from booking.coalesce import Coalescer


async def test_submits_during_a_flush_share_the_next_one() -> None:
    flushes: list[list[int]] = []
    gate = asyncio.Event()

    async def flush(key: str, items: list[int]) -> None:
        flushes.append(list(items))
        await gate.wait()

    c: Coalescer[str, int] = Coalescer(flush)
    first = asyncio.create_task(c.submit("k", 1))
    await asyncio.sleep(0)  # the first flush is in flight now, holding [1]
    rest = [asyncio.create_task(c.submit("k", i)) for i in (2, 3, 4)]
    await asyncio.sleep(0)
    assert flushes == [[1]]
    assert not any(t.done() for t in [first, *rest])
    gate.set()
    await asyncio.gather(first, *rest)
    assert flushes == [[1], [2, 3, 4]]  # 2-4 arrived after the first flush began: one more


async def test_a_submit_returns_only_after_a_flush_that_began_after_it() -> None:
    started: list[float] = []
    clock = 0.0

    async def flush(key: str, items: list[float]) -> None:
        started.append(clock)
        await asyncio.sleep(0.01)

    c: Coalescer[str, float] = Coalescer(flush)
    waits = []
    for _ in range(5):
        clock += 1
        waits.append((clock, asyncio.create_task(c.submit("k", clock))))
        await asyncio.sleep(0.004)
    for submitted_at, task in waits:
        await task
        assert any(s >= submitted_at for s in started)


async def test_a_failed_flush_fails_its_waiters_and_the_next_one_runs() -> None:
    calls = 0

    async def flush(key: str, items: list[int]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("down")

    c: Coalescer[str, int] = Coalescer(flush)
    with pytest.raises(ConnectionError):
        await c.submit("k", 1)
    await c.submit("k", 2)
    assert calls == 2


async def test_keys_flush_independently() -> None:
    seen: list[tuple[str, list[int]]] = []

    async def flush(key: str, items: list[int]) -> None:
        seen.append((key, items))

    c: Coalescer[str, int] = Coalescer(flush)
    await asyncio.gather(c.submit("a", 1), c.submit("b", 2))
    assert sorted(seen) == [("a", [1]), ("b", [2])]


async def test_a_hung_flush_times_out_and_later_submits_still_flush() -> None:
    hang = asyncio.Event()
    flushed: list[list[int]] = []

    async def flush(key: str, items: list[int]) -> None:
        if items == [1]:
            await hang.wait()  # never set: a stuck connection
        flushed.append(items)

    c: Coalescer[str, int] = Coalescer(flush, timeout_seconds=0.05)
    with pytest.raises(TimeoutError):
        await c.submit("k", 1)
    await asyncio.wait_for(c.submit("k", 2), timeout=5)
    assert flushed == [[2]]


async def test_posted_items_go_out_in_a_later_flush_and_a_failure_is_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flushes: list[list[int]] = []
    gate = asyncio.Event()

    async def flush(key: str, items: list[int]) -> None:
        flushes.append(list(items))
        await gate.wait()
        if 13 in items:
            raise ConnectionError("down")

    c: Coalescer[str, int] = Coalescer(flush)
    c.post("k", 1)  # returns at once
    await asyncio.sleep(0)
    assert flushes == [[1]]  # in flight
    c.post("k", 2)  # arrived during that flush: not in it, in the next one
    c.post("k", 13)
    gate.set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert flushes == [[1], [2, 13]]
    assert "skipped (repaired later)" in caplog.text and "down" in caplog.text
    c.post("k", 3)  # the failure stopped nothing
    for _ in range(20):
        await asyncio.sleep(0)
    assert flushes[-1] == [3]
