"""Payments always resolve, counted in the database: a worker SIGKILLed mid-payment, and
PostgreSQL down longer than the payment jobs' retry budget (a cluster of the test's own).

Holds last 3 s, shorter than each fault: only the payment's hold extension keeps the seats.
In both: every payment ends succeeded (or failed and refunded) within the stated bound, no seat
is sold twice, the provider's ledger shows one charge per payment, and no buyer is charged for
seats they did not get.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis
from rq import Queue
from rq.registry import FailedJobRegistry

from booking.db import recreate_database, with_database
from tests.conftest import (
    TEST_DATABASE_URL,
    TEST_REDIS_URL,
    bearer,
    free_port,
    make_event,
    make_user,
    start_server,
    start_worker,
    stop,
)
from tests.faults import OwnPostgres, children, gone, record_result

pytestmark = pytest.mark.faults

FAULTS_REDIS_URL = TEST_REDIS_URL.rsplit("/", 1)[0] + "/4"  # flushed by these tests
PENDING_MAX_SECONDS = 40  # the bound: a 202 payment keeps its hold and settles within this
BUYERS = 8
HANG_GUARD_SECONDS = 60.0


def env(queue: str, **extra: str) -> dict[str, str]:
    return {
        "REDIS_URL": FAULTS_REDIS_URL,
        "RQ_QUEUE": queue,
        "HOLD_SECONDS": "3",
        "PAYMENT_PENDING_MAX_SECONDS": str(PENDING_MAX_SECONDS),
        "PAYMENT_RESCUE_SECONDS": "2",
        "SWEEP_INTERVAL_SECONDS": "1",
        "PAYMENT_CONCURRENCY": "8",
        "WORKER_METRICS_PORT": "0",
        "ADMITTER_ENABLED": "0",
        **extra,
    }


async def buy(http: httpx.AsyncClient, n: int) -> tuple[int, list[int]]:
    """n buyers each hold one seat and ask to pay (202). Returns (event id, reservation ids)."""
    event = await make_event(http, rows=1, seats_per_row=n)
    rids = []
    for seat in event["seat_ids"]:
        user = await make_user(http)
        r = await http.post(
            f"/api/events/{event['id']}/holds", json={"seat_ids": [seat]}, headers=bearer(user)
        )
        assert r.status_code == 201, r.text
        rid = r.json()["reservation_id"]
        r = await http.post(
            f"/api/reservations/{rid}/payment",
            headers={**bearer(user), "Idempotency-Key": uuid.uuid4().hex},
        )
        assert r.status_code == 202, r.text
        rids.append(rid)
    return event["id"], rids


def wait_until(condition: Any, what: str, seconds: float = HANG_GUARD_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"hang guard: {what}"
        time.sleep(0.1)


async def wait_charged(db_url: str, ledger_url: str, rids: list[int]) -> None:
    """Until the provider has recorded a charge for every payment of `rids`."""
    conn = await asyncpg.connect(db_url)
    try:
        ids = [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM payments WHERE reservation_id = ANY($1)", rids
            )
        ]
    finally:
        await conn.close()
    ledger = await asyncpg.connect(ledger_url)
    try:
        deadline = time.monotonic() + HANG_GUARD_SECONDS
        while await ledger.fetchval(
            "SELECT count(*) FROM provider_charges WHERE payment_id = ANY($1)", ids
        ) < len(rids):
            assert time.monotonic() < deadline, "hang guard: the provider was never called"
            await asyncio.sleep(0.05)
    finally:
        await ledger.close()


async def wait_settled(db_url: str, rids: list[int]) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        deadline = time.monotonic() + HANG_GUARD_SECONDS
        while await conn.fetchval(
            "SELECT count(*) FROM payments WHERE reservation_id = ANY($1) AND status = 'pending'",
            rids,
        ):
            assert time.monotonic() < deadline, "hang guard: payments still pending"
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def check_books(
    db_url: str, ledger_url: str, event_id: int, rids: list[int]
) -> tuple[list[Any], list[Any]]:
    """The accounting every fault must leave intact; returns (payments, ledger rows)."""
    conn = await asyncpg.connect(db_url)
    try:
        payments = await conn.fetch(
            "SELECT p.id, p.status, p.refund_due, p.refunded_at IS NOT NULL AS refunded,"
            " r.status AS reservation,"
            " extract(epoch FROM p.updated_at - p.created_at) AS pending_seconds"
            " FROM payments p JOIN reservations r ON r.id = p.reservation_id"
            " WHERE p.reservation_id = ANY($1)",
            rids,
        )
        double_sold = await conn.fetchval(
            "SELECT count(*) FROM (SELECT rs.seat_id FROM reservation_seats rs"
            " JOIN reservations r ON r.id = rs.reservation_id"
            " WHERE r.event_id = $1 AND r.status = 'paid'"
            " GROUP BY rs.seat_id HAVING count(*) > 1) x",
            event_id,
        )
    finally:
        await conn.close()
    ledger_conn = await asyncpg.connect(ledger_url)
    try:
        ledger = await ledger_conn.fetch(
            "SELECT payment_id, ok, attempts, refunded_at IS NOT NULL AS refunded"
            " FROM provider_charges WHERE payment_id = ANY($1)",
            [p["id"] for p in payments],
        )
    finally:
        await ledger_conn.close()
    assert len(payments) == len(rids)
    assert double_sold == 0
    for p in payments:
        assert p["status"] in ("succeeded", "failed"), dict(p)
        assert p["pending_seconds"] <= PENDING_MAX_SECONDS, dict(p)
        if p["status"] == "succeeded":
            assert p["reservation"] == "paid"
        else:  # failed: refunded if anything was charged
            assert p["refund_due"] and p["refunded"], dict(p)
    charges = {c["payment_id"]: c for c in ledger}
    assert len(charges) == len(ledger)  # one charge per payment, whatever the retries
    by_id = {p["id"]: p for p in payments}
    for payment_id, charge in charges.items():
        kept = charge["ok"] and not charge["refunded"]
        # Charged and not refunded <=> the buyer got the seats.
        assert kept == (by_id[payment_id]["status"] == "succeeded"), (dict(charge), by_id)
    return list(payments), list(ledger)


def figures(payments: list[Any], ledger: list[Any]) -> dict[str, object]:
    return {
        "payments": len(payments),
        "succeeded": sum(p["status"] == "succeeded" for p in payments),
        "failed_and_refunded": sum(p["status"] == "failed" and p["refunded"] for p in payments),
        "max_pending_seconds": round(max(float(p["pending_seconds"]) for p in payments), 2),
        "bound_seconds": PENDING_MAX_SECONDS,
        "provider_charges": len(ledger),
        "max_charge_attempts": max(c["attempts"] for c in ledger),
        "seats_sold_twice": 0,
    }


@pytest.fixture
def faults_redis() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(FAULTS_REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


async def test_worker_sigkilled_mid_payment(database_url: str, faults_redis: redis.Redis) -> None:
    queue = "test-faults-kill"
    port = free_port()
    server = start_server(port, **env(queue))
    # A slow provider: the kill lands while every payment is at the provider.
    doomed = start_worker(**env(queue, PAYMENT_LATENCY_MS="3000"))
    rescuer = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            event_id, rids = await buy(http, BUYERS)
            # The nastiest moment: every buyer charged, nothing settled yet.
            await wait_charged(database_url, database_url, rids)
            scheduler = children(doomed.pid)  # RQ's scheduler, forked by the worker
            assert len(scheduler) == 1
            doomed.send_signal(signal.SIGKILL)
            doomed.wait()
            # It dies with its worker instead of running on, orphaned.
            wait_until(lambda: all(gone(p) for p in scheduler), "the scheduler outlived it")
            # The holds' own 3 s pass while nobody works on the payments.
            rescuer = start_worker(**env(queue, PAYMENT_LATENCY_MS="50"))
            await wait_settled(database_url, rids)
        payments, ledger = await check_books(database_url, database_url, event_id, rids)
        record_result("worker_sigkilled_mid_payment", **figures(payments, ledger))
        conn = await asyncpg.connect(database_url)
        try:
            statuses = await conn.fetch(
                "SELECT status FROM payments WHERE reservation_id = ANY($1)", rids
            )
        finally:
            await conn.close()
        # The accepted payments kept their holds: every buyer got their seat.
        assert [s["status"] for s in statuses] == ["succeeded"] * BUYERS
        # The killed worker had charged; the rescued jobs charged again and were deduplicated.
        assert len(ledger) == BUYERS and any(c["attempts"] >= 2 for c in ledger)
    finally:
        stop(server)
        for proc in (doomed, rescuer):
            if proc is not None and proc.poll() is None:
                stop(proc)


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    directory = Path(tempfile.mkdtemp(prefix="faults-pg-"))
    cluster = OwnPostgres(directory)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        subprocess.run(["rm", "-rf", str(directory)], check=False)


async def test_postgres_down_longer_than_the_retry_budget(
    own_postgres: OwnPostgres, faults_redis: redis.Redis
) -> None:
    queue = "test-faults-pg"
    db_url = own_postgres.url("ticketing_faults")
    await recreate_database(db_url)
    # The provider is another system: its ledger stays up on the shared server meanwhile.
    ledger_url = with_database(TEST_DATABASE_URL, f"{TEST_DATABASE_URL.rsplit('/', 1)[1]}_ledger")
    await recreate_database(ledger_url)
    settings = env(
        queue,
        DATABASE_URL=db_url,
        PROVIDER_DATABASE_URL=ledger_url,
        PAYMENT_RETRY_INTERVALS="1,1",  # the retry budget: about 2 s
        DB_POOL_MAX="8",
    )
    port = free_port()
    server = start_server(port, **settings)
    worker = start_worker(**settings, PAYMENT_LATENCY_MS="1500")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            event_id, rids = await buy(http, BUYERS)
            # Every buyer charged, nothing settled: PostgreSQL goes down under the workers.
            await wait_charged(db_url, ledger_url, rids)
            own_postgres.stop()
            down_at = time.monotonic()
            failed = FailedJobRegistry(queue, connection=faults_redis)
            # Every job exhausts its retries while PostgreSQL is down.
            wait_until(lambda: len(failed) >= BUYERS, "jobs did not exhaust their retries")
            assert len(Queue(queue, connection=faults_redis)) == 0
            exhausted = len(failed)
            own_postgres.start()
            down_seconds = time.monotonic() - down_at
            await wait_settled(db_url, rids)
        payments, ledger = await check_books(db_url, ledger_url, event_id, rids)
        record_result(
            "postgres_down_past_retry_budget",
            postgres_down_seconds=round(down_seconds, 1),
            retry_intervals_seconds=[1, 1],
            jobs_failed_with_retries_exhausted=exhausted,
            **figures(payments, ledger),
        )
        # The outage was shorter than the bound: every accepted payment kept its hold and paid,
        # charged once though each was charged again after the outage.
        assert len(ledger) == BUYERS and all(c["ok"] and not c["refunded"] for c in ledger)
        assert all(c["attempts"] >= 2 for c in ledger)
    finally:
        stop(server)
        stop(worker)
