"""Seedable synthetic cache traces, one key per line, for the eviction simulator.

Each generator returns the list of keys; `write_trace` writes any of them to a file. Every random
draw comes from one `numpy.random.Generator(seed)`, so a (generator, parameters, seed) triple always
yields the same trace.

    python -m load.eviction.workloads zipf --alpha 1.0 --requests 100000 --out /tmp/zipf.txt
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


def zipf_ranks(rng: np.random.Generator, n_keys: int, alpha: float, size: int) -> IntArray:
    """`size` ranks in [0, n_keys) with P(rank r) proportional to 1 / (r + 1)^alpha.

    Inverse-CDF sampling over a finite key space, so any alpha >= 0 works (numpy's own zipf needs
    alpha > 1 and an unbounded support).
    """
    weights = 1.0 / np.arange(1, n_keys + 1, dtype=np.float64) ** alpha
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    ranks = np.searchsorted(cdf, rng.random(size), side="right")
    return np.minimum(ranks, n_keys - 1).astype(np.int64)


def zipf(n_requests: int, n_keys: int, alpha: float, seed: int = 0) -> list[str]:
    """Independent requests, Zipf(alpha) popularity over `n_keys` keys; hot keys scattered."""
    rng = np.random.default_rng(seed)
    key_of_rank = rng.permutation(n_keys)
    ids = key_of_rank[zipf_ranks(rng, n_keys, alpha, n_requests)]
    return [f"k{i}" for i in ids.tolist()]


def scan_mix(
    n_requests: int,
    n_keys: int,
    alpha: float,
    scan_length: int,
    scan_fraction: float,
    seed: int = 0,
) -> list[str]:
    """A hot Zipf set interrupted by one-off sequential scans (a crawler, a batch export).

    About `scan_fraction` of the requests belong to scans of `scan_length` never-repeated keys,
    spread evenly through the trace. A scan flushes an LRU cache of up to `scan_length` keys.
    """
    rng = np.random.default_rng(seed)
    n_scan_requests = int(n_requests * scan_fraction)
    scan_length = max(1, min(scan_length, n_scan_requests))  # short traces get shorter scans
    n_scans = max(1, n_scan_requests // scan_length)
    n_hot = n_requests - n_scans * scan_length
    key_of_rank = rng.permutation(n_keys)
    hot = [f"k{i}" for i in key_of_rank[zipf_ranks(rng, n_keys, alpha, n_hot)].tolist()]
    out: list[str] = []
    gap = n_hot // (n_scans + 1)
    next_scan_key = 0
    for s in range(n_scans):
        out.extend(hot[s * gap : (s + 1) * gap])
        out.extend(f"scan{next_scan_key + j}" for j in range(scan_length))
        next_scan_key += scan_length
    out.extend(hot[n_scans * gap :])
    return out


def shifting(n_requests: int, n_keys: int, alpha: float, phases: int, seed: int = 0) -> list[str]:
    """Zipf(alpha) whose rank -> key mapping is re-drawn at the start of each of `phases` phases.

    Yesterday's favourites become ordinary keys: a policy that never forgets counts (LFU) keeps
    them and starves today's hot set.
    """
    rng = np.random.default_rng(seed)
    ranks = zipf_ranks(rng, n_keys, alpha, n_requests)
    bounds = np.linspace(0, n_requests, phases + 1).astype(np.int64)
    ids = np.empty(n_requests, dtype=np.int64)
    for start, stop in itertools.pairwise(bounds.tolist()):
        ids[start:stop] = rng.permutation(n_keys)[ranks[start:stop]]
    return [f"k{i}" for i in ids.tolist()]


def flash_sale(
    n_requests: int,
    n_events: int,
    seed: int = 0,
    slots: int = 200,
    alpha: float = 1.0,
    decay_slots: float = 8.0,
    browse: float = 0.02,
    seat_share: float = 0.8,
) -> list[str]:
    """Seat-map traffic of many events going hot and cold, modelled on this service's flash sales.

    Event e has a drawing power w_e ~ Zipf(alpha) (a few blockbusters, a long tail) and an on-sale
    time; its request rate is w_e * (browse + exp(-(t - on_sale) / decay)) after the sale opens and
    w_e * browse before. A request for an event reads its seat map `seats:<e>` (`seat_share`) or its
    page `event:<e>`. The trace is cut in `slots` time slots of equal request counts.
    """
    rng = np.random.default_rng(seed)
    power = 1.0 / np.arange(1, n_events + 1, dtype=np.float64) ** alpha
    power = power[rng.permutation(n_events)]
    on_sale = rng.uniform(0, slots, n_events)
    per_slot = np.diff(np.linspace(0, n_requests, slots + 1).astype(np.int64))
    chunks: list[IntArray] = []
    for t, count in enumerate(per_slot.tolist()):
        since = t - on_sale
        surge = np.where(since >= 0, np.exp(-np.maximum(since, 0) / decay_slots), 0.0)
        rate = power * (browse + surge)
        chunks.append(rng.choice(n_events, size=count, p=rate / rate.sum()))
    events = np.concatenate(chunks)
    is_seats = rng.random(n_requests) < seat_share
    return [
        f"seats:{e}" if s else f"event:{e}"
        for e, s in zip(events.tolist(), is_seats.tolist(), strict=True)
    ]


def write_trace(path: Path, keys: Sequence[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(keys) + "\n")
    return path


GENERATORS: dict[str, Callable[[argparse.Namespace], list[str]]] = {
    "zipf": lambda a: zipf(a.requests, a.keys, a.alpha, a.seed),
    "scan": lambda a: scan_mix(a.requests, a.keys, a.alpha, a.scan_length, a.scan_fraction, a.seed),
    "shifting": lambda a: shifting(a.requests, a.keys, a.alpha, a.phases, a.seed),
    "flashsale": lambda a: flash_sale(a.requests, a.events, a.seed),
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m load.eviction.workloads", description=__doc__)
    parser.add_argument("kind", choices=sorted(GENERATORS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--phases", type=int, default=5)
    parser.add_argument("--scan-length", type=int, default=4_000)
    parser.add_argument("--scan-fraction", type=float, default=0.3)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    keys = GENERATORS[args.kind](args)
    write_trace(args.out, keys)
    print(f"wrote {len(keys)} requests ({len(set(keys))} distinct keys) to {args.out}")


if __name__ == "__main__":
    main()
