"""The join's proof of work as a Locust buyer solves it (load/surge and load/swarm share it).

GET /api/events/{id}/challenge, then waitingroom.pow.solve — the page's algorithm (static/js/
pow.js hashes the same bytes) — on the Locust side, as a browser spends its own CPU. The solve
runs on gevent's thread pool: run inline it would stall the Locust worker's event loop (every
other buyer's request and timer in that process) for its whole duration, and the latencies
Locust records would include other buyers' solving; in a thread the GIL switches every few
milliseconds and the loop keeps serving. One solver thread per process: with more, the loop
would get a smaller share of the GIL. The CPU it costs is the same, and is returned.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from gevent.threadpool import ThreadPool

from waitingroom.pow import solve

CHALLENGE_ROUTE = "/api/events/{event_id}/challenge"
_solver: ThreadPool | None = None  # made on first use, in the process that uses it


def _solver_pool() -> ThreadPool:
    global _solver
    if _solver is None:
        _solver = ThreadPool(maxsize=1)
    return _solver


@dataclass(frozen=True)
class PowSolution:
    headers: dict[str, str] = field(default_factory=dict)  # {} when the event asks for no work
    difficulty: int = 0
    cpu_seconds: float = 0.0  # this process's CPU time spent solving
    challenge_status: int = 0  # the challenge request's HTTP status (0: no answer)


def _timed_solve(token: str, difficulty: int) -> tuple[str, float]:
    """(nonce, this thread's CPU seconds for it)."""
    started = time.thread_time()
    nonce = solve(token, difficulty)
    return nonce, time.thread_time() - started


def solve_join_challenge(client: Any, event_id: int) -> PowSolution:
    """Fetch and solve the event's challenge with a Locust HTTP client (FastHttpUser.client).

    The challenge request is named by its route template and counted as failed unless 200.
    """
    with client.get(
        f"/api/events/{event_id}/challenge", name=CHALLENGE_ROUTE, catch_response=True
    ) as r:
        if r.status_code == 200:
            r.success()
        else:
            r.failure(f"{r.status_code}: {(r.text or '')[:200]}")
        body = r.json() if r.status_code == 200 else {}
    if not body.get("challenge"):
        return PowSolution(challenge_status=r.status_code)
    difficulty = int(body["difficulty"])
    nonce, cpu_seconds = _solver_pool().apply(_timed_solve, (body["challenge"], difficulty))
    return PowSolution(
        headers={"X-PoW-Challenge": body["challenge"], "X-PoW-Nonce": nonce},
        difficulty=difficulty,
        cpu_seconds=cpu_seconds,
        challenge_status=r.status_code,
    )
