"""Schema-driven fuzzing: Schemathesis generates requests for every operation of /openapi.json
(valid and invalid ones, admin operations with the admin token, user operations with a real
user's token) against a live server with a database and Redis db of its own.

Every answer must be no 5xx and conform to the schema: documented status code, documented media
type, body valid against the documented schema. Bounded: FUZZ_EXAMPLES cases per operation and
mode, events capped at a few seats each so the database stays small.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import re
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from booking.db import database_name, recreate_database, with_database
from tests.conftest import (
    ADMIN_TOKEN,
    TEST_DATABASE_URL,
    TEST_REDIS_URL,
    free_port,
    start_server,
    stop,
)

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
# The timeout is a hang-guard for a busy machine; the default run takes about a minute.
pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(max(300, 10 * FUZZ_EXAMPLES))]
FUZZ_DATABASE_URL = with_database(TEST_DATABASE_URL, database_name(TEST_DATABASE_URL) + "_fuzz")
# A Redis db of its own: the fuzz server's event ids overlap the other test server's.
FUZZ_REDIS_URL = os.environ.get("TEST_FUZZ_REDIS_URL", re.sub(r"/\d+$", "/12", TEST_REDIS_URL))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_ROWS, MAX_SEATS_PER_ROW = 2, 5


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[str]:
    asyncio.run(recreate_database(FUZZ_DATABASE_URL))
    client = redis.Redis.from_url(FUZZ_REDIS_URL)
    client.flushdb()
    port = free_port()
    proc = start_server(
        port,
        DATABASE_URL=FUZZ_DATABASE_URL,
        REDIS_URL=FUZZ_REDIS_URL,
        RQ_QUEUE="fuzz-ticketing",  # no worker: payments stay pending, which is a valid answer
        ADMITTER_ENABLED="0",
        POW_DIFFICULTY="0",  # joins need no proof of work unless a fuzzed PATCH turns it on
        DB_POOL_MAX="6",
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
        client.flushdb()
        client.close()


@pytest.fixture(scope="module")
def user_token(fuzz_server: str) -> str:
    r = httpx.post(f"{fuzz_server}/api/users", json={"name": "Fuzz", "email": "fuzz@example.com"})
    assert r.status_code == 201, r.text
    # Something real to find: an event on sale with a few seats (ids start at 1).
    event = httpx.post(
        f"{fuzz_server}/api/admin/events",
        json={
            "name": "Fuzz event",
            "starts_at": "2030-01-01T20:00:00+00:00",
            "seats": [{"section": "A", "rows": 1, "seats_per_row": 5, "price": 100}],
        },
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert event.status_code == 201, event.text
    token: str = r.json()["token"]
    return token


@pytest.fixture(scope="module")
def rotating_token(fuzz_server: str) -> str:
    """A user of its own for `POST /api/users/me/token`, which revokes the token it is sent
    with: the other operations keep theirs."""
    r = httpx.post(
        f"{fuzz_server}/api/users", json={"name": "Rotating", "email": "rotating@example.com"}
    )
    assert r.status_code == 201, r.text
    token: str = r.json()["token"]
    return token


@pytest.fixture(scope="module")
def api_schema(fuzz_server: str) -> Any:
    return schemathesis.openapi.from_url(f"{fuzz_server}/openapi.json")


ROTATION_PATH = "/api/users/me/token"


def bounded(case: Any) -> None:
    """Cap generated events at MAX_ROWS x MAX_SEATS_PER_ROW seats per block."""
    if case.method == "POST" and case.path == "/api/admin/events" and isinstance(case.body, dict):
        for block in case.body.get("seats") or []:
            if isinstance(block, dict):
                for key, cap in (("rows", MAX_ROWS), ("seats_per_row", MAX_SEATS_PER_ROW)):
                    value = block.get(key)
                    if isinstance(value, int) and not isinstance(value, bool) and value > cap:
                        block[key] = cap


def auth_headers(operation: Any, user_token: str) -> dict[str, str]:
    security = operation.definition.raw.get("security") or []
    if {"adminBearer": []} in security:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    if {"userBearer": []} in security:
        return {"Authorization": f"Bearer {user_token}"}
    return {}


def fuzz(
    operation: Any, mode: GenerationMode, user_token: str, seen: collections.Counter[str]
) -> None:
    headers = auth_headers(operation, user_token)

    # Schemathesis' pytest plugin does not run under this pytest, so hypothesis drives each
    # operation's strategy directly (the same strategies the plugin would use).
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure
    )
    def run(case: Any) -> None:
        bounded(case)
        response = case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)
        seen[f"{operation.label} {response.status_code}"] += 1

    run()


def test_every_operation_conforms_and_never_5xx(
    api_schema: Any, user_token: str, rotating_token: str
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20
    only = os.environ.get("FUZZ_ONLY")  # e.g. "GET /reservations/{reservation_id}" to re-run one
    operations = [op for op in operations if only is None or op.label == only]
    failures = []
    seen: collections.Counter[str] = collections.Counter()
    started = time.monotonic()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                token = rotating_token if operation.path == ROTATION_PATH else user_token
                fuzz(operation, mode, token, seen)
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE, operation.label  # nothing to make invalid
            except Exception as exc:
                details = "".join(traceback.format_exception(exc))[-4000:]
                failures.append(f"{operation.label} [{mode.value}]: {details}")
    if os.environ.get("FUZZ_RESULTS"):  # e.g. docs/results/fuzz_schemathesis.json
        write_results(Path(os.environ["FUZZ_RESULTS"]), seen, len(operations), started, failures)
    assert not failures, "\n\n".join(failures)


def write_results(
    path: Path, seen: collections.Counter[str], operations: int, started: float, failures: list[str]
) -> None:
    by_status: collections.Counter[str] = collections.Counter()
    for key, count in seen.items():
        by_status[key.rsplit(" ", 1)[1]] += count
    path.write_text(
        json.dumps(
            {
                "schemathesis": schemathesis.__version__,
                "examples_per_operation_and_mode": FUZZ_EXAMPLES,
                "operations": operations,
                "requests_passing_all_checks": sum(seen.values()),
                "failures": len(failures),
                "responses_by_status": dict(sorted(by_status.items())),
                "responses_by_operation_and_status": dict(sorted(seen.items())),
                "seconds": round(time.monotonic() - started, 1),
                "checks": [check.__name__ for check in CHECKS],
            },
            indent=2,
        )
        + "\n"
    )
