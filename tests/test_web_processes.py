"""`make run` serves the web app with WEB_CONCURRENCY processes: what each process keeps in
memory (room-config cache, queue snapshot) stays correct, and their admitters together admit
exactly admit_per_second per tick; a rotated bearer token is refused by every process within its
bound. Real processes: `python -m booking.run` with two uvicorn workers behind one port."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import ADMIN_TOKEN, ROOT, TEST_REDIS_URL, free_port, service_env, wait_ready
from waitingroom.keys import RoomKeys

# A Redis db of its own: the session's other servers' admitters must not admit from it.
OWN_REDIS_URL = TEST_REDIS_URL.rsplit("/", 1)[0] + "/7"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# Far above the test's deadlines: only the invalidation message can explain a change seen
# by every process in time.
CACHE_SECONDS = 120
DEADLINE_SECONDS = 20.0


@pytest.fixture(scope="module")
def service(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the service; its metrics directory is at `metrics_dir(base)`."""
    metrics_dir = tmp_path_factory.mktemp("prom")
    own = redis.Redis.from_url(OWN_REDIS_URL)
    own.flushdb()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "booking.run"],
        cwd=ROOT,
        env=service_env(
            PORT=str(port),
            REDIS_URL=OWN_REDIS_URL,
            WEB_CONCURRENCY="2",
            WORKERS="0",
            RQ_DASHBOARD_PORT="0",
            WORKER_METRICS_PORT="0",
            PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
            ROOM_CACHE_SECONDS=str(CACHE_SECONDS),
            DB_POOL_MAX="4",
            ADMITTER_ENABLED="1",
        ),
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    _METRICS_DIRS[base] = metrics_dir
    try:
        wait_ready(base, proc)
        yield base
        assert proc.poll() is None, "the service died during the tests"
    finally:
        proc.send_signal(signal.SIGINT)  # booking.run's Ctrl-C path stops its children
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        own.flushdb()
        own.close()


_METRICS_DIRS: dict[str, Path] = {}


def serving_pids(base: str) -> set[str]:
    """Processes that wrote metrics (prometheus-client names its files by pid)."""
    return {p.stem.rsplit("_", 1)[-1] for p in _METRICS_DIRS[base].glob("counter_*.db")}


def create_event(base: str, **room: Any) -> int:
    resp = httpx.post(
        f"{base}/api/admin/events",
        json={
            "name": "web processes",
            "starts_at": "2030-01-01T20:00:00+00:00",
            "seats": [{"section": "A", "rows": 1, "seats_per_row": 5, "price": 100}],
            "waiting_room_enabled": True,
        },
        headers=ADMIN,
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    event_id = int(resp.json()["id"])
    if room:
        patch = httpx.patch(
            f"{base}/api/admin/events/{event_id}/waiting-room", json=room, headers=ADMIN, timeout=30
        )
        assert patch.status_code == 200, patch.text
    return event_id


def join_is_open(base: str, event_id: int, token: str) -> bool:
    # A fresh connection each time, so the kernel hands it to either process. Joining again is
    # idempotent: 201 while the room is open, 409 once it is closed.
    resp = httpx.post(
        f"{base}/api/events/{event_id}/queue",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert resp.status_code in (201, 409), resp.text
    return resp.status_code == 201


def new_user_token(base: str) -> str:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    resp = httpx.post(f"{base}/api/users", json={"name": "p", "email": email}, timeout=30)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["token"])


def test_an_admin_change_is_seen_by_every_process_within_its_bound(service: str) -> None:
    event_id = create_event(service)
    token = new_user_token(service)
    # Both processes read (and cache) the room as open.
    assert all(join_is_open(service, event_id, token) for _ in range(40))
    assert len(serving_pids(service)) >= 2, "both web processes served requests"

    patch = httpx.patch(
        f"{service}/api/admin/events/{event_id}/waiting-room",
        json={"enabled": False},
        headers=ADMIN,
        timeout=30,
    )
    assert patch.status_code == 200
    deadline = time.monotonic() + DEADLINE_SECONDS
    closed_in_a_row = 0
    while closed_in_a_row < 40:
        assert time.monotonic() < deadline, "a process still serves the old room config"
        closed_in_a_row = 0 if join_is_open(service, event_id, token) else closed_in_a_row + 1


def me_status(base: str, token: str) -> int:
    # A fresh connection each time, so the kernel hands it to either process.
    resp = httpx.get(
        f"{base}/api/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert resp.status_code in (200, 401), resp.text
    return resp.status_code


def test_a_rotated_token_is_refused_by_every_process_within_its_bound(service: str) -> None:
    token = new_user_token(service)
    # Both processes accept it (by its tag: no lookup).
    assert all(me_status(service, token) == 200 for _ in range(40))
    assert len(serving_pids(service)) >= 2, "both web processes served requests"
    rotated = httpx.post(
        f"{service}/api/users/me/token", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert rotated.status_code == 201, rotated.text
    # The process that rotated refuses it at once, the other after its next revocation read
    # (AUTH_REVOCATION_SECONDS, 5 s). Below AUTH_CACHE_SECONDS (60 s): a process that does not
    # read revocations keeps trusting the fresh token's tag past this deadline.
    deadline = time.monotonic() + DEADLINE_SECONDS
    refused_in_a_row = 0
    while refused_in_a_row < 40:
        assert time.monotonic() < deadline, "a process still accepts the rotated token"
        refused_in_a_row = refused_in_a_row + 1 if me_status(service, token) == 401 else 0
    assert me_status(service, str(rotated.json()["token"])) == 200


def test_several_processes_admit_exactly_admit_per_second_per_tick(service: str) -> None:
    aps, buyers, window = 3, 14, 600
    event_id = create_event(
        service, admit_per_second=aps, max_active=100, admission_window_seconds=window
    )
    keys = RoomKeys(str(event_id))
    own = redis.Redis.from_url(OWN_REDIS_URL)
    try:
        # Hold the admitters back while the queue fills: a tick far in the future makes every
        # process's tick a no-op until it is removed.
        own.set(keys.tick, 2**40)
        order = []
        tag = uuid.uuid4().hex[:10]
        with httpx.Client(base_url=service, timeout=30) as http:
            for i in range(buyers):
                email = f"{tag}.{i}@example.com"
                user = http.post("/api/users", json={"name": "p", "email": email})
                assert user.status_code == 201, user.text
                joined = http.post(
                    f"/api/events/{event_id}/queue",
                    headers={"Authorization": f"Bearer {user.json()['token']}"},
                )
                assert joined.status_code == 201 and joined.json()["position"] == i + 1
                order.append(str(user.json()["id"]))
        own.delete(keys.tick)
        deadline = time.monotonic() + DEADLINE_SECONDS
        while own.zcard(keys.active) < buyers:
            assert time.monotonic() < deadline, "admissions stalled"
            time.sleep(0.2)
        by_tick: dict[int, set[str]] = defaultdict(set)
        active: list[tuple[bytes, float]] = own.zrange(keys.active, 0, -1, withscores=True)  # type: ignore[assignment]
        for member, expiry in active:
            # expiry = tick time (ms) + window: recovers the second that admitted the buyer.
            by_tick[(int(expiry) - window * 1000) // 1000].add(member.decode())
        sizes = [len(by_tick[t]) for t in sorted(by_tick)]
        assert sizes == [aps] * (buyers // aps) + [buyers % aps]
        # ... and in FIFO order, one tick's batch after the other.
        batches = [by_tick[t] for t in sorted(by_tick)]
        assert batches == [set(order[i : i + aps]) for i in range(0, buyers, aps)]
    finally:
        own.close()
