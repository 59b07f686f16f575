"""Swarm buyer (FastHttpUser): solve the join's proof of work, join a waiting room, poll, hold,
pay - once each.

Run by `python -m load.swarm`, which starts the service, creates the events and the buyers'
accounts (buyers have an account before the sale opens), and accounts for every buyer.
Environment (set by the runner):
  SWARM_EVENTS        JSON list of event ids; each buyer picks one uniformly
  SWARM_ACCOUNTS      JSON file: [[user_id, bearer token], ...], at least one per buyer
  SWARM_LOCUST_WORKERS  how many worker processes share the accounts
  SWARM_OUTCOMES_DIR  directory: each worker process appends one JSON line per buyer
  SWARM_POLL_SECONDS  seconds between queue polls (jittered ±20 %, Retry-After honoured)
  SWARM_PATIENCE_SECONDS  how long a buyer waits for admission before giving up

The proof of work (GET challenge, solve, send X-PoW-Challenge/X-PoW-Nonce with the join) is
load/pow_client.py, shared with load/surge; each journey records the CPU its solve took
(`pow_cpu_ms`, the work a browser would do) and the difficulty the event asked for.

Outcomes (the accounting's categories):
  paid                               admitted and bought
  sold_out, hold_conflicts, admission_rejected, admission_lapsed, payment_failed,
  payment_unseen, payment_refused_<status>
                                     admitted and not bought, with the reason
  gave_up                            left the queue after SWARM_PATIENCE_SECONDS
  waiting_at_end                     still waiting when the run stopped
  <phase>_at_end                     any other journey the run's end interrupted
  no_account, challenge_failed, join_failed
                                     never joined (errors, counted apart)
Buyers that end without buying leave the room (DELETE queue/{ticket}) so their slot is freed.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import uuid
from pathlib import Path
from typing import IO, Any, NoReturn

import gevent
import locust.runners
from locust import events, task
from locust.contrib.fasthttp import FastHttpUser

from load.pow_client import solve_join_challenge

EVENTS: list[int] = json.loads(os.environ.get("SWARM_EVENTS", "[]") or "[]")
POLL_SECONDS = float(os.environ.get("SWARM_POLL_SECONDS", "3"))
PATIENCE_SECONDS = float(os.environ.get("SWARM_PATIENCE_SECONDS", "150"))
PAYMENT_WAIT_SECONDS = 30.0
HOLD_ATTEMPTS = 3
# On a shared 2-core box a busy worker (or master) can miss heartbeats for a while: the master
# would call the worker missing and move its buyers elsewhere (3 s), or the worker would stop
# its buyers and start over (60 s). Either would make buyers arrive twice; the run is bounded
# by its own timer instead.
locust.runners.HEARTBEAT_LIVENESS = 600
locust.runners.MASTER_HEARTBEAT_TIMEOUT = 600

_accounts: list[list[Any]] | None = None
_taken = itertools.count()


def next_account(runner: Any) -> tuple[int, str] | None:
    """The next unused (user id, token) of this worker's share: every `workers`-th account from
    its index on (the runner makes a little more accounts than buyers for uneven shares)."""
    global _accounts
    if _accounts is None:
        _accounts = json.loads(Path(os.environ["SWARM_ACCOUNTS"]).read_text())
    workers = int(os.environ.get("SWARM_LOCUST_WORKERS", "1"))
    index = getattr(runner, "worker_index", 0) + workers * next(_taken)
    if index >= len(_accounts):
        return None
    user_id, token = _accounts[index]
    return int(user_id), str(token)


_out: IO[str] | None = None
# Journeys in progress in this worker: flushed as "<phase>_at_end" when the run stops.
UNFINISHED: dict[int, dict[str, Any]] = {}


def _outcomes() -> IO[str] | None:
    global _out
    folder = os.environ.get("SWARM_OUTCOMES_DIR")
    if _out is None and folder:
        _out = (Path(folder) / f"outcomes-{os.getpid()}.jsonl").open("a", buffering=1)
    return _out


def record(journey: dict[str, Any]) -> None:
    UNFINISHED.pop(id(journey), None)
    out = _outcomes()
    if out is not None:
        out.write(json.dumps(journey) + "\n")


@events.test_stop.add_listener
@events.quitting.add_listener
def _flush_unfinished(**_: Any) -> None:
    for journey in list(UNFINISHED.values()):
        journey.update(outcome=f"{journey['phase']}_at_end", ended=time.time())
        record(journey)


def _retry_after(response: Any, default: float) -> float:
    try:
        return max(0.2, float(response.headers.get("Retry-After") or default))
    except (TypeError, ValueError):
        return default


class SwarmBuyer(FastHttpUser):  # type: ignore[misc]
    # One journey per buyer; the runner's arrival rate is Locust's spawn rate.
    network_timeout = 60.0
    connection_timeout = 30.0

    def _call(self, method: str, path: str, name: str, ok: tuple[int, ...], **kw: Any) -> Any:
        with self.client.request(method, path, name=name, catch_response=True, **kw) as r:
            if r.status_code in ok:
                r.success()
            else:
                r.failure(f"{r.status_code}: {(r.text or '')[:120]}")
            return r

    def _end(self, j: dict[str, Any], outcome: str) -> NoReturn:
        j.update(outcome=outcome, ended=time.time())
        record(j)
        # Idle until the run ends: a stopped user would be replaced by a new one (Locust keeps
        # the user count), and each buyer must arrive once.
        while True:
            gevent.sleep(3600)

    def _leave(self, eid: int, ticket: str, auth: dict[str, str]) -> None:
        self._call(
            "DELETE",
            f"/api/events/{eid}/queue/{ticket}",
            "/api/events/{event_id}/queue/{ticket}",
            (200, 404),
            headers=auth,
        )

    def on_start(self) -> None:
        if not EVENTS:
            raise RuntimeError("SWARM_EVENTS is empty")
        eid = random.choice(EVENTS)
        j: dict[str, Any] = {"event_id": eid, "started": time.time(), "phase": "joining"}
        UNFINISHED[id(j)] = j
        self.journey = j
        account = next_account(self.environment.runner)
        if account is None:
            self._end(j, "no_account")
        j["user_id"], token = account
        self.auth = {"Authorization": f"Bearer {token}"}

    def _wait_for_admission(self, j: dict[str, Any], eid: int) -> str:
        pow_solution = solve_join_challenge(self.client, eid)
        if pow_solution.challenge_status != 200:  # no challenge: a join would be refused
            j["challenge_status"] = pow_solution.challenge_status
            self._end(j, "challenge_failed")
        j.update(
            pow_difficulty=pow_solution.difficulty,
            pow_cpu_ms=round(pow_solution.cpu_seconds * 1000, 2),
        )
        r = self._call(
            "POST",
            f"/api/events/{eid}/queue",
            "/api/events/{event_id}/queue",
            (201,),
            headers={**self.auth, **pow_solution.headers},
        )
        if r.status_code != 201:
            j["join_status"] = r.status_code  # 0: no answer (it may still have been queued)
            self._end(j, "join_failed")
        body = r.json()
        ticket = str(body["ticket"])
        j.update(phase="waiting", ticket=ticket, joined_at=time.time(), position=body["position"])
        while body.get("status") != "admitted":
            if time.time() - j["joined_at"] > PATIENCE_SECONDS:
                self._leave(eid, ticket, self.auth)
                self._end(j, "gave_up")
            gevent.sleep(POLL_SECONDS * random.uniform(0.8, 1.2))
            r = self._call(
                "GET",
                f"/api/events/{eid}/queue/{ticket}",
                "/api/events/{event_id}/queue/{ticket}",
                (200, 429),
            )
            j["polls"] = j.get("polls", 0) + 1
            if r.status_code == 429:
                gevent.sleep(_retry_after(r, POLL_SECONDS))
                continue
            if r.status_code == 200:
                body = r.json()
                if body["status"] == "expired":
                    self._end(j, "admission_lapsed")
        j.update(phase="admitted", admitted_at=time.time())
        return str(body["admission_token"])

    def _hold(self, j: dict[str, Any], eid: int, token: str) -> int | None:
        headers = {**self.auth, "X-Admission-Token": token}
        for attempt in range(HOLD_ATTEMPTS):
            r = self._call(
                "GET", f"/api/events/{eid}/seats", "/api/events/{event_id}/seats", (200,)
            )
            seats = r.json() if r.status_code == 200 else []
            free = [s["id"] for s in seats if s["status"] == "available"]
            if not free:
                return None
            want = random.sample(free, min(len(free), random.randint(1, 2)))
            r = self._call(
                "POST",
                f"/api/events/{eid}/holds",
                "/api/events/{event_id}/holds",
                (201, 409, 403),
                json={"seat_ids": want},
                headers=headers,
            )
            j["hold_attempts"] = attempt + 1
            if r.status_code == 201:
                return int(r.json()["reservation_id"])
            if r.status_code == 403:  # the admission lapsed or was refused meanwhile
                j["admission_rejected"] = True
                return None
            gevent.sleep(random.uniform(0.05, 0.3))
        j["hold_conflicts"] = True
        return None

    def _pay(self, j: dict[str, Any], rid: int) -> str:
        r = self._call(
            "POST",
            f"/api/reservations/{rid}/payment",
            "/api/reservations/{reservation_id}/payment",
            (202,),
            headers={**self.auth, "Idempotency-Key": uuid.uuid4().hex},
        )
        if r.status_code != 202:
            return f"payment_refused_{r.status_code}"
        j.update(phase="paying", pay_requested_at=time.time())
        deadline = time.time() + PAYMENT_WAIT_SECONDS
        while time.time() < deadline:
            gevent.sleep(0.5)
            r = self._call(
                "GET",
                f"/api/reservations/{rid}",
                "/api/reservations/{reservation_id}",
                (200,),
                headers=self.auth,
            )
            if r.status_code != 200:
                continue
            res = r.json()
            if res["status"] == "paid":
                j["settled_at"] = time.time()
                return "paid"
            if (res.get("payment") or {}).get("status") == "failed":
                j["settled_at"] = time.time()
                return "payment_failed"
        return "payment_unseen"

    @task
    def journey_task(self) -> None:
        try:
            self._journey()
        except Exception as exc:  # an unexpected answer: still one outcome per buyer
            self._end(self.journey, f"error_{type(exc).__name__}")

    def _journey(self) -> None:
        j = self.journey
        eid = int(j["event_id"])
        token = self._wait_for_admission(j, eid)
        rid = self._hold(j, eid, token)
        if rid is None:
            self._leave(eid, j["ticket"], self.auth)
            reason = "hold_conflicts" if j.get("hold_conflicts") else "sold_out"
            self._end(j, "admission_rejected" if j.get("admission_rejected") else reason)
        j.update(phase="held", reservation_id=rid)
        outcome = self._pay(j, rid)
        if outcome != "paid":
            self._leave(eid, j["ticket"], self.auth)
        self._end(j, outcome)
