"""The join's proof of work as a Locust buyer solves it (load/surge and load/swarm share it).

GET /api/events/{id}/challenge, then waitingroom.pow.solve — the page's algorithm (static/js/
pow.js hashes the same bytes) — on the Locust side, as a browser spends its own CPU. The solve
is plain CPU work: it blocks the Locust worker's gevent loop for its duration, which the CPU
figure it returns lets the caller report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from waitingroom.pow import solve

CHALLENGE_ROUTE = "/api/events/{event_id}/challenge"


@dataclass(frozen=True)
class PowSolution:
    headers: dict[str, str] = field(default_factory=dict)  # {} when the event asks for no work
    difficulty: int = 0
    cpu_seconds: float = 0.0  # this process's CPU time spent solving
    challenge_status: int = 0  # the challenge request's HTTP status (0: no answer)


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
    started = time.process_time()
    nonce = solve(body["challenge"], difficulty)
    return PowSolution(
        headers={"X-PoW-Challenge": body["challenge"], "X-PoW-Nonce": nonce},
        difficulty=difficulty,
        cpu_seconds=time.process_time() - started,
        challenge_status=r.status_code,
    )
