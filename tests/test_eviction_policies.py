"""Hand-computed traces: exact hits and exact eviction order for each policy.

Each trace was worked through on paper (the comments give the state after the deciding steps);
the expected values are not taken from a run of the code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from eviction import POLICIES, make_policy
from eviction.arc import ARC
from eviction.base import EvictionPolicy
from eviction.opt import OPT, next_uses
from eviction.s3fifo import S3FIFO
from eviction.sketch import CountMinSketch
from eviction.wtinylfu import WTinyLFU


def replay(policy: EvictionPolicy[str, str], trace: str) -> tuple[int, list[str]]:
    """Cache-aside: get, and on a miss put; return (hits, evicted keys in order)."""
    hits, evicted = 0, []
    for key in trace.split():
        if policy.get(key) is not None:
            hits += 1
        else:
            evicted += policy.put(key, f"v{key}")
        assert len(policy) <= policy.capacity
    return hits, evicted


def test_lru_evicts_least_recent() -> None:
    # after A B A: order B, A -> C evicts B; then B evicts A; then A evicts C
    assert replay(make_policy("lru", 2), "A B A C B A") == (1, ["B", "A", "C"])


def test_fifo_ignores_hits() -> None:
    # the hit on A does not save it: C evicts A, B hits, A evicts B
    assert replay(make_policy("fifo", 2), "A B A C B A") == (2, ["A", "B"])


def test_lfu_lowest_frequency_then_least_recent() -> None:
    # A:2 B:1 C:1 when D arrives -> B (older of the two at 1); then E -> C (LRU would evict A, B)
    assert replay(make_policy("lfu", 3), "A A B C D E") == (1, ["B", "C"])
    assert replay(make_policy("lru", 3), "A A B C D E") == (1, ["A", "B"])


def test_lfu_counts_restart_after_eviction() -> None:
    # A A B -> B evicted by C (A has 2); B comes back at 1 and evicts C (1, older); D evicts B
    assert replay(make_policy("lfu", 2), "A A B C B D") == (1, ["B", "C", "B"])


def test_s3fifo_quick_demotion_ghost_and_main_reinsertion() -> None:
    cache: S3FIFO[str, str] = S3FIFO(4, small_ratio=0.25)  # S: 1, M: 3, ghost: 3
    assert (cache.small_capacity, cache.main_capacity) == (1, 3)
    # step 6 (E): S=[A*,B,C,D] -> A (hit once) moves to M, B evicted to the ghost
    # step 7 (B): C evicted to the ghost; B is a ghost hit, so it enters M directly
    # step 9 (F): D (hit) moves to M, E evicted
    # step 12 (G): F (hit) moves to M, M=[A*,B,D,F] over 3 -> A reinserted (count spent), B evicted
    assert replay(cache, "A B A C D E B D F A F G") == (4, ["B", "C", "E", "B"])
    assert "B" not in cache and set("DFAG") == {k for k in "ABCDEFG" if k in cache}


def test_s3fifo_scan_does_not_touch_main() -> None:
    cache: S3FIFO[str, str] = S3FIFO(10)  # S: 1, M: 9
    replay(cache, "H H " + " ".join(f"s{i}" for i in range(30)))
    assert "H" in cache  # H was hit in S, so it lives in M; the scan only churned S


def test_wtinylfu_admission_by_frequency() -> None:
    cache: WTinyLFU[int, str] = WTinyLFU(3)  # window 1, main 2, protected 1
    assert (cache.window_capacity, cache.main_capacity, cache.protected_capacity) == (1, 2, 1)
    # int keys: str hashes are salted per process, and a collision in this 4 x 16 sketch would
    # change the duels; int hashes are fixed, and the estimates are checked below.
    trace = [ord(c) for c in "AAABCDBEAEFEG"]
    hits, evicted = 0, []
    for key in trace:
        if cache.get(key) is not None:
            hits += 1
        else:
            evicted += cache.put(key, "v")
    # 6 (D): candidate C (1) vs victim A (3) -> C evicted; 8 (E): D (1) vs A (3) -> D evicted
    # 9: A promoted, B demoted to probation; 11 (F): E (2) vs B (2) -> tie keeps B, E evicted
    # 12 (E): F (1) vs B (2) -> F evicted; 13 (G): E (3) vs B (2) -> B evicted
    assert (hits, "".join(map(chr, evicted))) == (5, "CDEFB")
    estimates = {k: cache.sketch.estimate(ord(k)) for k in "ABCDEFG"}
    assert estimates == {"A": 4, "B": 2, "C": 1, "D": 1, "E": 3, "F": 1, "G": 1}


def test_sketch_halves_counts_every_sample_period() -> None:
    sketch = CountMinSketch(4)  # sample size max(16, 40) = 40
    for _ in range(20):
        sketch.increment(7)  # saturates at 15 (4-bit counter)
    assert sketch.estimate(7) == 15
    for i in range(19):
        sketch.increment(1000 + i)
    assert sketch.resets == 0
    sketch.increment(5)  # the 40th increment triggers the reset
    assert sketch.resets == 1 and sketch.estimate(7) == 7 and sketch.additions == 20


def test_arc_adapts_target_with_ghost_hits() -> None:
    cache: ARC[str, str] = ARC(2)
    # 4 (C): T1=[B] T2=[A], p=0 -> B to B1; 5 (B): B1 hit, p=1, T1 not above p -> A to B2
    # 6 (A): B2 hit, p=0 -> C to B1; 7 (D): T1 empty -> B from T2; 8 (C): B1 hit, p=1 -> A
    assert replay(cache, "A B A C B A D C") == (1, ["B", "A", "C", "B", "A"])
    assert cache.p == 1.0


def test_opt_evicts_farthest_next_use() -> None:
    trace = ["A", "B", "C", "A", "B", "D", "A"]
    # 3 (C): A next at 3, B at 4 -> evict B; 5 (B): C never again -> C; 6 (D): B never -> B
    assert replay(make_policy("opt", 2, trace), " ".join(trace)) == (2, ["B", "C", "B"])


def test_next_uses() -> None:
    assert next_uses(list("ABAB")) == [2, 3, 4 + 2, 4 + 3]


def test_opt_rejects_requests_out_of_trace_order() -> None:
    cache: OPT[str, str] = OPT(2, ["A", "B"])
    with pytest.raises(ValueError, match="offline"):
        cache.get("B")
    assert cache.get("A") is None
    with pytest.raises(ValueError, match="offline"):
        cache.put("Z", "v")
    with pytest.raises(ValueError, match="needs the whole trace"):
        make_policy("opt", 2)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_put_on_resident_key_updates_without_eviction(name: str) -> None:
    trace: Sequence[str] = ["A", "B", "A", "A"]
    cache: EvictionPolicy[str, Any] = make_policy(name, 2, trace)
    for key in trace[:2]:
        assert cache.get(key) is None
        assert cache.put(key, 1) == []
    assert cache.get("A") == 1
    assert cache.put("A", 2) == []
    assert cache.get("A") == 2
    assert cache.remove("A") is True
    assert cache.remove("A") is False
    assert "A" not in cache and len(cache) == 1


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_capacity_must_be_positive(name: str) -> None:
    with pytest.raises(ValueError, match="capacity"):
        make_policy(name, 0, [])


def test_unknown_policy() -> None:
    with pytest.raises(ValueError, match="unknown policy"):
        make_policy("random", 3)
