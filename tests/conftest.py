"""Shared fixtures: a test database and Redis db of their own, a live server and a real RQ worker.

Never touches a developer's demo: the database is `ticketing_test` (TEST_DATABASE_URL) and Redis
db 15 (TEST_REDIS_URL), both emptied before and after the session.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis

from booking.db import recreate_database
from load.harness import free_port as free_port  # re-exported: tests import it from here
from ops.processes import stop_processes

ROOT = Path(__file__).resolve().parent.parent
TEST_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/ticketing_test"
)
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ADMIN_TOKEN = "test-admin-token"
STARTUP_TIMEOUT_SECONDS = 30


def service_env(**overrides: str) -> dict[str, str]:
    """Environment for a server or worker subprocess under test."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": TEST_DATABASE_URL,
            "REDIS_URL": TEST_REDIS_URL,
            "RQ_QUEUE": "test-ticketing",
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "ADMISSION_SECRET": "test-admission-secret",
            "PAYMENT_LATENCY_MS": "20",
            "SWEEP_INTERVAL_SECONDS": "1",
            "SEAT_CACHE_STRATEGY": "ttl",
            "SEAT_CACHE_TTL_SECONDS": "1.0",
            "SEAT_CACHE_STALE_BOUND_SECONDS": "1.0",
            # Several servers run at once in a session (live, scale-out pair, short holds) against
            # PostgreSQL's default 100 connections: keep each pool small.
            "DB_POOL_MAX": "12",
            "LOG_LEVEL": "warning",
            "PYTHONUNBUFFERED": "1",
            # The suite creates many users from 127.0.0.1: bot defence off unless a test (e.g.
            # tests/test_bot_defence.py) turns a limit, the seat cap or the PoW on explicitly.
            "ACCOUNTS_PER_IP_PER_MINUTE": "0",
            "JOINS_PER_IP_PER_MINUTE": "0",
            "UNKNOWN_POLLS_PER_IP_PER_MINUTE": "0",
            "MAX_SEATS_PER_BUYER": "0",
            "POW_DIFFICULTY": "0",
        }
    )
    env.update(overrides)
    return env


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    asyncio.run(recreate_database(TEST_DATABASE_URL))
    yield TEST_DATABASE_URL


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    yield TEST_REDIS_URL
    client.flushdb()
    client.close()


def wait_ready(base_url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {base_url} not ready in {STARTUP_TIMEOUT_SECONDS}s")


def start_server(port: int, **env: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "booking.asgi:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-proxy-headers",  # X-Forwarded-For is the app's job (TRUSTED_PROXIES)
        ],
        cwd=ROOT,
        env=service_env(PORT=str(port), **env),
    )
    wait_ready(f"http://127.0.0.1:{port}", proc)
    return proc


def start_worker(**env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "workers.run"], cwd=ROOT, env=service_env(**env))


def stop(proc: subprocess.Popen[bytes]) -> None:
    stop_processes([proc])


@pytest.fixture(scope="session")
def live_server(database_url: str, redis_url: str) -> Iterator[str]:
    port = free_port()
    proc = start_server(port)
    yield f"http://127.0.0.1:{port}"
    stop(proc)


@pytest.fixture(scope="session")
def rq_worker(database_url: str, redis_url: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_worker()
    yield proc
    stop(proc)


@pytest.fixture
async def http(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    async with httpx.AsyncClient(base_url=live_server, timeout=60, limits=limits) as client:
        yield client


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    assert pool is not None
    yield pool
    await pool.close()


async def make_user(http: httpx.AsyncClient, name: str = "Buyer") -> dict[str, Any]:
    email = f"{name.lower().replace(' ', '.')}.{uuid.uuid4().hex[:12]}@example.com"
    response = await http.post("/api/users", json={"name": name, "email": email})
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


def bearer(user: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {user['token']}"}


async def make_event(
    http: httpx.AsyncClient,
    rows: int = 2,
    seats_per_row: int = 10,
    waiting_room: bool = False,
    price: int = 5000,
) -> dict[str, Any]:
    response = await http.post(
        "/api/admin/events",
        json={
            "name": f"Test event {uuid.uuid4().hex[:8]}",
            "starts_at": "2030-01-01T20:00:00+00:00",
            "seats": [
                {"section": "A", "rows": rows, "seats_per_row": seats_per_row, "price": price}
            ],
            "waiting_room_enabled": waiting_room,
        },
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    event: dict[str, Any] = response.json()
    seats = (await http.get(f"/api/events/{event['id']}/seats")).json()
    event["seat_ids"] = [s["id"] for s in seats]
    return event
