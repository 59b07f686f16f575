"""Prometheus metrics: what the web app and the worker really export, and that every PromQL
expression shipped in ops/ (dashboards, recording and alert rules) names only those metrics.

A private web server and worker (their own RQ queue, so no other worker takes the jobs) are
exercised through a sale: hold, pay, let a hold expire, then both /metrics pages are read.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import (
    ROOT,
    bearer,
    free_port,
    make_event,
    make_user,
    start_server,
    start_worker,
    stop,
)

OPS = ROOT / "ops"
DASHBOARDS = sorted((OPS / "grafana" / "dashboards").glob("*.json"))
RULE_FILES = [OPS / "prometheus" / "recording_rules.yml", OPS / "prometheus" / "alert_rules.yml"]
WAIT_SECONDS = 30

# Series Prometheus itself makes for every target.
PROMETHEUS_SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan", "atan2",
}  # fmt: skip
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count", "_created")


@dataclass
class Stack:
    web: str
    worker: str
    queue: str


@pytest.fixture(scope="module")
def stack(database_url: str, redis_url: str) -> Iterator[Stack]:
    queue = f"test-metrics-{uuid.uuid4().hex[:8]}"
    worker_port = free_port()
    env = {"RQ_QUEUE": queue, "HOLD_SECONDS": "3", "ADMITTER_ENABLED": "1"}
    web_port = free_port()
    server = start_server(web_port, **env)
    worker = start_worker(WORKER_METRICS_PORT=str(worker_port), **env)
    worker_url = f"http://127.0.0.1:{worker_port}"
    try:
        _wait_http(f"{worker_url}/metrics", worker)
        yield Stack(f"http://127.0.0.1:{web_port}", worker_url, queue)
    finally:
        stop(worker)
        stop(server)


def _wait_http(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {WAIT_SECONDS}s")


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[set[str], Samples]:
    """(every series name the page can produce, {(sample name, labels): value})."""
    names: set[str] = set()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        if family.type == "counter":
            names.update({family.name + "_total", family.name + "_created"})
        if family.type in ("histogram", "summary"):
            names.update(family.name + suffix for suffix in HISTOGRAM_SUFFIXES)
        for sample in family.samples:
            names.add(sample.name)
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return names, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples named `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def metric_names_in(expr: str) -> set[str]:
    """The metric (or recorded series) names a PromQL expression selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)  # string literals
    text = re.sub(r"\{[^{}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\[\]]*\]", "", text)  # range and subquery durations
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text
    )  # label lists
    text = re.sub(r"\boffset\s+\w+", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def shipped_expressions() -> list[tuple[str, str]]:
    """(where, PromQL) for every expression in the dashboards and the rule files."""
    found: list[tuple[str, str]] = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found.append((f"{path.name}: {panel['title']}", target["expr"]))
        for variable in board.get("templating", {}).get("list", []):
            query = variable.get("query")
            text = query.get("query", "") if isinstance(query, dict) else str(query or "")
            inner = re.fullmatch(r"label_values\((.+),\s*\w+\)", text.strip())
            if inner:
                found.append((f"{path.name}: variable {variable['name']}", inner.group(1)))
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("record") or rule.get("alert")
                found.append((f"{path.name}: {name}", rule["expr"]))
    return found


def recorded_names() -> set[str]:
    rules = yaml.safe_load(RULE_FILES[0].read_text())["groups"]
    return {r["record"] for g in rules for r in g["rules"]}


async def _wait_status(
    http: httpx.AsyncClient, rid: int, user: dict[str, Any], wanted: str
) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = (await http.get(f"/api/reservations/{rid}", headers=bearer(user))).json()
        if body.get("status") == wanted:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"reservation {rid} never became {wanted}: {body}")


@pytest.fixture(scope="module")
async def exported(stack: Stack) -> AsyncIterator[tuple[set[str], Samples, Samples]]:
    """Run a small sale on the private stack; (all names, web samples, worker samples)."""
    async with httpx.AsyncClient(base_url=stack.web, timeout=30) as http:
        event = await make_event(http, rows=1, seats_per_row=4)
        buyer = await make_user(http, "Payer")
        loser = await make_user(http, "Loser")
        idler = await make_user(http, "Idler")
        for _ in range(3):
            assert (await http.get(f"/api/events/{event['id']}/seats")).status_code == 200
        seats = event["seat_ids"]
        held = await http.post(
            f"/api/events/{event['id']}/holds", json={"seat_ids": seats[:2]}, headers=bearer(buyer)
        )
        assert held.status_code == 201, held.text
        conflict = await http.post(
            f"/api/events/{event['id']}/holds", json={"seat_ids": seats[1:3]}, headers=bearer(loser)
        )
        assert conflict.status_code == 409, conflict.text
        idle = await http.post(
            f"/api/events/{event['id']}/holds", json={"seat_ids": seats[3:]}, headers=bearer(idler)
        )
        assert idle.status_code == 201, idle.text
        rid = held.json()["reservation_id"]
        paid = await http.post(
            f"/api/reservations/{rid}/payment",
            headers={**bearer(buyer), "Idempotency-Key": uuid.uuid4().hex},
        )
        assert paid.status_code == 202, paid.text
        await _wait_status(http, rid, buyer, "paid")
        # HOLD_SECONDS=3: the idle hold is released by its scheduled job or the sweeper.
        await _wait_status(http, idle.json()["reservation_id"], idler, "expired")
        assert (await http.get("/no/such/page")).status_code == 404
        web_names, web_samples = parse((await http.get("/metrics")).text)
        deadline = time.monotonic() + WAIT_SECONDS
        while True:  # the expiry-schedule sweeps run on this stack's worker
            worker_names, worker_samples = parse((await http.get(f"{stack.worker}/metrics")).text)
            expiry_jobs = value(
                worker_samples, "rq_job_duration_seconds_count", job="expire_due_holds"
            )
            if expiry_jobs >= 1 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    yield web_names | worker_names, web_samples, worker_samples


async def test_web_exports_labelled_request_cache_db_and_redis_series(
    exported: tuple[set[str], Samples, Samples],
) -> None:
    _, web, _ = exported
    holds_route = "/api/events/{event_id:int}/holds"
    assert value(web, "http_requests_total", route=holds_route, status="201") == 2
    assert value(web, "http_requests_total", route=holds_route, status="409") == 1
    assert value(web, "http_requests_total", route="<unmatched>", status="404") >= 1
    assert value(web, "http_request_duration_seconds_count", route=holds_route) == 3
    assert value(web, "holds_created_total") == 2
    assert value(web, "hold_conflicts_total") == 1
    assert value(web, "payments_requested_total") == 1
    assert value(web, "seat_cache_hits_total") + value(web, "seat_cache_misses_total") >= 3
    assert value(web, "db_query_duration_seconds_count", operation="select") > 0
    assert value(web, "db_query_duration_seconds_count", operation="insert") > 0
    assert value(web, "redis_command_duration_seconds_count") > 0
    assert value(web, "db_pool_connections", state="idle") >= 1
    assert any(n == "rq_queue_depth" for n, _ in web)


async def test_worker_exports_job_payment_and_expiry_series(
    exported: tuple[set[str], Samples, Samples],
) -> None:
    _, _, worker = exported
    assert value(worker, "payment_outcomes_total", outcome="succeeded") == 1
    assert value(worker, "payment_job_seconds_count") == 1
    assert value(worker, "rq_job_duration_seconds_count", job="complete_payment", status="ok") == 1
    # The expiry schedule is swept here (its own queue, every EXPIRY_SWEEP_INTERVAL_SECONDS). The
    # idle hold was released by it (holds_expired_total{by="job"}) unless a sweeper got there
    # first: any worker sharing this test database may sweep it.
    assert value(worker, "rq_job_duration_seconds_count", job="expire_due_holds", status="ok") >= 1
    assert value(worker, "holds_expired_total", by="job") <= 1
    assert value(worker, "db_query_duration_seconds_count") > 0
    # The worker answers its own metrics only: no HTTP series from the web process.
    assert value(worker, "http_requests_total") == 0


async def test_every_shipped_promql_expression_uses_exported_metrics(
    exported: tuple[set[str], Samples, Samples],
) -> None:
    names, _, _ = exported
    known = names | recorded_names() | PROMETHEUS_SYNTHETIC
    expressions = shipped_expressions()
    assert len(expressions) > 40 and DASHBOARDS, "dashboards or rules went missing"
    unknown = {
        (where, name)
        for where, expr in expressions
        for name in metric_names_in(expr)
        if name not in known
    }
    assert not unknown, sorted(unknown)


def test_metric_name_extraction() -> None:
    expr = (
        'sum by (route, le) (rate(http_request_duration_seconds_bucket{route="/a/{id:int}"}'
        "[$__rate_interval])) / on (job) group_left job:http_requests:rate1m offset 5m"
        " > bool 0.5 and up == 1"
    )
    assert metric_names_in(expr) == {
        "http_request_duration_seconds_bucket",
        "job:http_requests:rate1m",
        "up",
    }


def test_dashboards_are_provisioned_and_distinct() -> None:
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert {p.name for p in DASHBOARDS} >= {"surge.json", "cache.json"}
    assert len(uids) == len(set(uids))
    provider = yaml.safe_load(
        (OPS / "grafana" / "provisioning" / "dashboards" / "dashboards.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    sources = yaml.safe_load(
        (OPS / "grafana" / "provisioning" / "datasources" / "datasources.yml").read_text()
    )
    source_uids = {d["uid"] for d in sources["datasources"]}
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            assert panel["datasource"]["uid"] in source_uids, (path.name, panel["title"])
