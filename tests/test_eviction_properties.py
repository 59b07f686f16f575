"""Property tests over generated traces: invariants every policy keeps, OPT's optimality, and LRU's
hit ratio predicted independently from reuse (stack) distances."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from eviction import ONLINE, POLICIES, make_policy
from eviction.base import EvictionPolicy

ALPHABET = 12
traces = st.lists(st.integers(0, ALPHABET - 1), min_size=0, max_size=150)
capacities = st.integers(1, 9)
policy_names = st.sampled_from(sorted(POLICIES))
FAST = settings(max_examples=150, deadline=None)


def resident(cache: EvictionPolicy[int, Any]) -> set[int]:
    return {k for k in range(ALPHABET) if k in cache}


def hits_by_access(name: str, capacity: int, trace: list[int]) -> int:
    cache = make_policy(name, capacity, trace)
    return sum(map(cache.access, trace))


@FAST
@given(name=policy_names, capacity=capacities, trace=traces)
def test_capacity_respected_hits_never_evict_and_evictions_are_consistent(
    name: str, capacity: int, trace: list[int]
) -> None:
    cache: EvictionPolicy[int, Any] = make_policy(name, capacity, trace)
    hits = 0
    for key in trace:
        before = resident(cache)
        if cache.get(key) is not None:
            hits += 1
            assert resident(cache) == before, "a hit changed what is cached"
            assert cache.put(key, f"again{key}") == [], "an update evicted"
        else:
            assert key not in before
            evicted = cache.put(key, f"v{key}")
            after = resident(cache)
            assert len(evicted) <= 1
            assert set(evicted) <= before and not set(evicted) & after
            assert after == (before - set(evicted)) | {key}
        assert len(cache) == len(resident(cache)) <= capacity
    # access() is get-then-put-on-miss (no update on a hit, unlike the loop above, where an
    # update may count as a use), so compare it with exactly that sequence on a fresh cache.
    plain: EvictionPolicy[int, Any] = make_policy(name, capacity, trace)
    plain_hits = 0
    for key in trace:
        if plain.get(key) is not None:
            plain_hits += 1
        else:
            plain.put(key, f"v{key}")
    assert hits_by_access(name, capacity, trace) == plain_hits


@FAST
@given(capacity=capacities, trace=traces)
def test_opt_beats_every_online_policy(capacity: int, trace: list[int]) -> None:
    best = hits_by_access("opt", capacity, trace)
    for name in ONLINE:
        assert hits_by_access(name, capacity, trace) <= best, name


@FAST
@given(name=st.sampled_from(ONLINE), trace=traces, extra=st.integers(0, 3))
def test_only_cold_misses_when_everything_fits(name: str, trace: list[int], extra: int) -> None:
    capacity = max(1, len(set(trace)) + extra)
    assert len(trace) - hits_by_access(name, capacity, trace) == len(set(trace))


def stack_distance_hits(trace: list[int], capacity: int) -> int:
    """Hits of an LRU cache of `capacity`, counted the naive way: a request hits iff fewer than
    `capacity` distinct other keys were requested since the previous request for the same key."""
    hits = 0
    for i, key in enumerate(trace):
        seen: set[int] = set()
        for j in range(i - 1, -1, -1):
            if trace[j] == key:
                hits += len(seen) < capacity
                break
            seen.add(trace[j])
    return hits


@FAST
@given(capacity=capacities, trace=traces)
def test_lru_hit_ratio_equals_stack_distance_prediction(capacity: int, trace: list[int]) -> None:
    assert hits_by_access("lru", capacity, trace) == stack_distance_hits(trace, capacity)


@FAST
@given(
    name=st.sampled_from(ONLINE),
    capacity=capacities,
    ops=st.lists(st.tuples(st.booleans(), st.integers(0, ALPHABET - 1)), max_size=150),
)
def test_invalidation_keeps_the_cache_consistent(
    name: str, capacity: int, ops: list[tuple[bool, int]]
) -> None:
    cache: EvictionPolicy[int, Any] = make_policy(name, capacity)
    for is_remove, key in ops:
        if is_remove:
            was = key in cache
            assert cache.remove(key) is was
            assert key not in cache
        else:
            hit = key in cache
            assert cache.access(key) is hit
            assert key in cache
        assert len(cache) == len(resident(cache)) <= capacity


def test_stack_distance_helper_on_a_known_trace() -> None:
    # A B C A: A's reuse distance is 2 (B, C) -> a hit only from capacity 3
    assert [stack_distance_hits([0, 1, 2, 0], c) for c in (1, 2, 3)] == [0, 0, 1]
