"""Locust surge user: sign up, queue in a waiting room, get admitted, hold seats, pay.

Run through `python -m load.surge` (which starts the service, creates the events and accounts for
every admission). Standalone:

    SURGE_EVENTS='[{"id": 1, "weight": 5}]' locust -f load/surge/locustfile.py --host http://127.0.0.1:8000

Environment:
  SURGE_EVENTS    JSON list of {"id", "weight"}: which events the users pick, and how often
  SURGE_TRACE     file to append every cacheable read's key to, one per line
                  (`seatmap:{<event>}` for a seat map, `event:{<event>}` for an event page)
  SURGE_OUTCOMES  file to append one JSON line per journey to (how it ended, timings)
  SURGE_P_LEAVE_WAITING, SURGE_P_LEAVE_ADMITTED, SURGE_P_LET_EXPIRE: behaviour mix

Each journey: POST /api/users; GET the event page; GET a proof-of-work challenge and solve it
(load/pow_client.py: the page's algorithm; CPU time on the Locust side, as in a browser); POST
queue with the solution; poll (honouring 429 Retry-After) until admitted; GET the seat map;
hold 1-4 random available seats with the admission token (on 409 re-read the map and retry with
other seats, a few times); pay with an Idempotency-Key;
poll the reservation until paid or the payment failed. Some users give up while waiting or
after admission the way most real buyers do, by closing the tab: they stop polling and their
slot lapses (the page's Leave button, DELETE /api/events/{id}/queue/{ticket}, is not modelled),
and some let the hold expire. Every request is named by its route template.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from typing import IO, Any

import gevent
from locust import between, task
from locust.contrib.fasthttp import FastHttpUser

from load.pow_client import solve_join_challenge

EVENTS: list[dict[str, Any]] = json.loads(os.environ.get("SURGE_EVENTS", "[]") or "[]")
P_LEAVE_WAITING = float(os.environ.get("SURGE_P_LEAVE_WAITING", "0.08"))
P_LEAVE_ADMITTED = float(os.environ.get("SURGE_P_LEAVE_ADMITTED", "0.05"))
P_LET_EXPIRE = float(os.environ.get("SURGE_P_LET_EXPIRE", "0.10"))
HOLD_ATTEMPTS = 4
PAYMENT_POLL_SECONDS = 20.0
ADMISSION_PATIENCE_SECONDS = 120.0


def _open(env: str) -> IO[str] | None:
    path = os.environ.get(env)
    return open(path, "a", buffering=1) if path else None  # lives for the run


TRACE = _open("SURGE_TRACE")
OUTCOMES = _open("SURGE_OUTCOMES")


def trace(key: str) -> None:
    if TRACE is not None:
        TRACE.write(key + "\n")


def retry_after(response: Any, default: float = 1.0) -> float:
    try:
        return max(0.1, float(response.headers.get("Retry-After") or default))
    except (TypeError, ValueError):
        return default


class SurgeBuyer(FastHttpUser):  # type: ignore[misc]
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.journey: dict[str, Any] | None = None

    def on_stop(self) -> None:
        if self.journey is not None:  # the run ended mid-journey
            self._finish("interrupted")

    def _finish(self, outcome: str) -> None:
        assert self.journey is not None
        self.journey["outcome"] = outcome
        self.journey["ended"] = time.time()
        if OUTCOMES is not None:
            OUTCOMES.write(json.dumps(self.journey) + "\n")
        self.journey = None

    def _get(self, path: str, name: str, ok: tuple[int, ...] = (200,), **kw: Any) -> Any:
        with self.client.get(path, name=name, catch_response=True, **kw) as r:
            if r.status_code in ok:
                r.success()
            else:
                r.failure(f"{r.status_code}: {(r.text or '')[:200]}")
            return r

    def _post(self, path: str, name: str, ok: tuple[int, ...], **kw: Any) -> Any:
        with self.client.post(path, name=name, catch_response=True, **kw) as r:
            if r.status_code in ok:
                r.success()
            else:
                r.failure(f"{r.status_code}: {(r.text or '')[:200]}")
            return r

    def _pow_headers(self, event_id: int) -> dict[str, str]:
        """Solve the join's proof of work as the waiting-room page does; {} when it is off."""
        return solve_join_challenge(self.client, event_id).headers

    def _seat_map(self, event_id: int) -> list[dict[str, Any]]:
        trace(f"seatmap:{{{event_id}}}")
        r = self._get(f"/api/events/{event_id}/seats", "/api/events/{event_id}/seats")
        if self.journey is not None:
            self.journey["seatmap_reads"] = self.journey.get("seatmap_reads", 0) + 1
        return list(r.json()) if r.status_code == 200 else []

    @task
    def journey_task(self) -> None:
        if not EVENTS:
            raise RuntimeError("SURGE_EVENTS is empty")
        event = random.choices(EVENTS, weights=[e.get("weight", 1) for e in EVENTS])[0]
        eid = int(event["id"])
        self.journey = {"event_id": eid, "started": time.time(), "admitted": False, "held": False}
        j = self.journey

        r = self._post(
            "/api/users",
            "/api/users",
            (201,),
            json={"name": "Surge buyer", "email": f"surge.{uuid.uuid4().hex}@example.com"},
        )
        if r.status_code != 201:
            return self._finish("signup_failed")
        user = r.json()
        j["user_id"] = user["id"]
        auth = {"Authorization": f"Bearer {user['token']}"}

        trace(f"event:{{{eid}}}")
        self._get(f"/api/events/{eid}", "/api/events/{event_id}")

        r = self._post(
            f"/api/events/{eid}/queue",
            "/api/events/{event_id}/queue",
            (201,),
            headers={**auth, **self._pow_headers(eid)},
        )
        if r.status_code != 201:
            return self._finish("join_failed")
        joined = r.json()
        ticket = joined["ticket"]
        j.update(joined_at=time.time(), position=joined["position"], eta=joined["eta_seconds"])

        patience = (
            random.uniform(3, 30)
            if random.random() < P_LEAVE_WAITING
            else ADMISSION_PATIENCE_SECONDS
        )
        body: dict[str, Any] = joined
        while body.get("status") != "admitted":
            if time.time() - j["joined_at"] > patience:
                return self._finish("left_waiting")
            eta = body.get("eta_seconds") or 1
            gevent.sleep(min(3.0, max(0.6, eta / 4)))
            r = self._get(
                f"/api/events/{eid}/queue/{ticket}",
                "/api/events/{event_id}/queue/{ticket}",
                ok=(200, 429),
            )
            if r.status_code == 429:
                j["polls_429"] = j.get("polls_429", 0) + 1
                gevent.sleep(retry_after(r))
                continue
            if r.status_code != 200:
                continue
            body = r.json()
            if body["status"] == "expired":
                return self._finish("admission_expired_before_seen")
        j.update(admitted=True, admitted_seen_at=time.time())
        headers = {**auth, "X-Admission-Token": body["admission_token"]}

        if random.random() < P_LEAVE_ADMITTED:
            return self._finish("left_admitted")
        reservation = None
        for attempt in range(HOLD_ATTEMPTS):
            available = [s["id"] for s in self._seat_map(eid) if s["status"] == "available"]
            if not available:
                return self._finish("sold_out")
            want = random.sample(available, min(len(available), random.randint(1, 4)))
            r = self._post(
                f"/api/events/{eid}/holds",
                "/api/events/{event_id}/holds",
                (201, 409),
                json={"seat_ids": want},
                headers=headers,
            )
            j["hold_attempts"] = attempt + 1
            if r.status_code == 201:
                reservation = r.json()
                break
            if r.status_code == 403:
                return self._finish("hold_forbidden")
            gevent.sleep(random.uniform(0.05, 0.3))
        if reservation is None:
            return self._finish("hold_conflicts_exhausted")
        rid = reservation["reservation_id"]
        j.update(held=True, reservation_id=rid, seats=len(reservation["seat_ids"]))

        if random.random() < P_LET_EXPIRE:
            return self._finish("let_hold_expire")
        r = self._post(
            f"/api/reservations/{rid}/payment",
            "/api/reservations/{reservation_id}/payment",
            (202,),
            headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
        )
        if r.status_code != 202:
            return self._finish(f"payment_refused_{r.status_code}")
        j["pay_requested_at"] = time.time()
        deadline = time.time() + PAYMENT_POLL_SECONDS
        while time.time() < deadline:
            gevent.sleep(0.4)
            r = self._get(
                f"/api/reservations/{rid}", "/api/reservations/{reservation_id}", headers=auth
            )
            if r.status_code != 200:
                continue
            res = r.json()
            payment = res.get("payment") or {}
            if res["status"] == "paid":
                j["settled_at"] = time.time()
                return self._finish("paid")
            if payment.get("status") == "failed":
                j["settled_at"] = time.time()
                return self._finish("payment_failed")
        return self._finish("payment_pending_timeout")
