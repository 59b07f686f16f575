"""Debian's nginx in front of two web processes, the whole app on the session's Redis Cluster.

nginx's config is the environment's parts around ops/nginx/flashsale_proxy.conf, the include
docker-compose uses. The web processes keep the waiting room, seat cache and limits on the
cluster under a key prefix of their own (a cluster has only db 0) and RQ on the single test Redis.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from redis.cluster import RedisCluster

from tests.conftest import (
    TEST_REDIS_URL,
    bearer,
    free_port,
    make_event,
    make_user,
    start_server,
    start_worker,
    stop,
)
from tests.nginx_proxy import NginxProxy, require_nginx, start_nginx
from tests.redis_cluster import RedisClusterNodes
from tests.test_admission_flow import poll_until_admitted
from tests.test_payments import wait_for
from waitingroom.keys import RoomKeys

pytest_plugins = ["tests.cluster_fixtures"]
pytestmark = [pytest.mark.nginx, pytest.mark.cluster]

QUEUE = "test-nginx"
PREFIX = f"nginx-{uuid.uuid4().hex[:8]}:"


@dataclass
class Site:
    proxy: NginxProxy
    webs: dict[int, subprocess.Popen[bytes]]  # port -> web process
    cluster: RedisClusterNodes


@pytest.fixture(scope="module")
def site(
    database_url: str, redis_url: str, redis_cluster: RedisClusterNodes, tmp_path_factory: Any
) -> Iterator[Site]:
    require_nginx()
    env = {
        "REDIS_CLUSTER": "1",
        "REDIS_URL": redis_cluster.url,
        "REDIS_KEY_PREFIX": PREFIX,
        "RQ_REDIS_URL": TEST_REDIS_URL,
        "RQ_QUEUE": QUEUE,
        "ADMITTER_ENABLED": "1",
    }
    procs: list[subprocess.Popen[bytes]] = []
    proxy: NginxProxy | None = None
    try:
        webs = {}
        for _ in range(2):
            port = free_port()
            webs[port] = start_server(port, **env)
            procs.append(webs[port])
        procs.append(start_worker(**env))
        proxy = start_nginx(tmp_path_factory.mktemp("nginx"), free_port(), list(webs))
        yield Site(proxy, webs, redis_cluster)
    finally:
        if proxy is not None:
            proxy.stop()
        for proc in procs:
            stop(proc)


@pytest.fixture
async def via_nginx(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=site.proxy.url, timeout=60, limits=limits) as client:
        yield client


async def test_admission_flow_and_seat_race_through_nginx(
    site: Site, via_nginx: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    http = via_nginx
    event = await make_event(http, rows=1, seats_per_row=4, waiting_room=True)
    eid = event["id"]
    buyer = await make_user(http, "Nginx Buyer")
    r = await http.post(f"/api/events/{eid}/queue", headers=bearer(buyer))
    assert r.status_code == 201, r.text
    admitted = await poll_until_admitted(http, eid, r.json()["ticket"])
    headers = {**bearer(buyer), "X-Admission-Token": admitted["admission_token"]}
    r = await http.post(
        f"/api/events/{eid}/holds", json={"seat_ids": event["seat_ids"][:2]}, headers=headers
    )
    assert r.status_code == 201, r.text
    rid = r.json()["reservation_id"]
    r = await http.post(
        f"/api/reservations/{rid}/payment",
        headers={**bearer(buyer), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 202, r.text
    assert (await wait_for(http, rid, buyer, {"paid"}))["status"] == "paid"

    # The room's keys are on the cluster under this deployment's prefix, never unprefixed.
    with RedisCluster.from_url(site.cluster.url) as cluster:
        assert cluster.get(RoomKeys(str(eid), PREFIX).seq) == b"1"  # one join
        assert not cluster.exists(RoomKeys(str(eid)).seq)

    # Seat race: 30 buyers want the same two seats at once, through nginx to both processes.
    race = await make_event(http, rows=1, seats_per_row=4)
    contested = race["seat_ids"][:2]
    racers = [await make_user(http, f"Racer {i}") for i in range(30)]
    results = await asyncio.gather(
        *(
            http.post(
                f"/api/events/{race['id']}/holds",
                json={"seat_ids": contested},
                headers=bearer(u),
            )
            for u in racers
        )
    )
    codes = sorted(r.status_code for r in results)
    assert codes.count(201) == 1 and codes.count(409) == 29, codes
    rows = await db.fetch(
        "SELECT seat_id, reservation_id FROM reservation_seats"
        " WHERE active AND seat_id = ANY($1::bigint[])",
        contested,
    )
    assert len(rows) == 2 and len({r["reservation_id"] for r in rows}) == 1
    # Both web processes served the race (nginx balanced it).
    upstreams = {
        line.upstreams[0]
        for line in site.proxy.access_log()
        if line.method == "POST" and line.uri.endswith("/holds")
    }
    assert upstreams == {f"127.0.0.1:{p}" for p in site.webs}


async def test_killing_a_web_process_loses_no_data_and_nginx_retries_gets(
    site: Site, via_nginx: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """Web process A freezes with requests in flight, then dies (SIGSTOP, then SIGKILL).

    GETs it had are retried by nginx on B and answer 200; holds (POST) it had are answered 502
    and not retried (they might have run); none of those reached the database, and the buyer's
    own retry succeeds on B. Every 201 is in the database.
    """
    http = via_nginx
    event = await make_event(http, rows=1, seats_per_row=10)
    eid, seats = event["id"], event["seat_ids"]
    buyers = [await make_user(http, f"Kill {i}") for i in range(6)]
    victim_port, survivor_port = list(site.webs)
    victim, survivor = f"127.0.0.1:{victim_port}", f"127.0.0.1:{survivor_port}"
    log_mark = len(site.proxy.access_log())

    site.webs[victim_port].send_signal(signal.SIGSTOP)
    try:
        tasks: list[asyncio.Task[httpx.Response]] = []
        # Pairs of the same method: round robin sends one of each pair to the frozen process.
        for i in range(6):
            for _ in range(2):
                tasks.append(asyncio.create_task(http.get(f"/api/events/{eid}/seats")))
                await asyncio.sleep(0.1)
            buyer = buyers[i]
            tasks.append(
                asyncio.create_task(
                    http.post(
                        f"/api/events/{eid}/holds",
                        json={"seat_ids": [seats[i]]},
                        headers=bearer(buyer),
                    )
                )
            )
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # the survivor answers its share meanwhile
    finally:
        site.webs[victim_port].send_signal(signal.SIGKILL)
        site.webs[victim_port].wait(timeout=10)
    responses = await asyncio.gather(*tasks)

    gets = [r for r in responses if r.request.method == "GET"]
    posts = [r for r in responses if r.request.method == "POST"]
    assert all(r.status_code == 200 for r in gets), [r.status_code for r in gets]
    assert {r.status_code for r in posts} <= {201, 502}

    lines = site.proxy.access_log()[log_mark:]
    get_lines = [ln for ln in lines if ln.method == "GET" and ln.uri.endswith("/seats")]
    post_lines = [ln for ln in lines if ln.method == "POST"]
    retried = [ln for ln in get_lines if ln.upstreams == [victim, survivor]]
    assert retried, "no GET reached the frozen process; nothing was retried"
    assert all(ln.status == 200 for ln in get_lines)
    assert all(len(ln.upstreams) == 1 for ln in post_lines), "nginx retried a POST"
    failed_posts = [ln for ln in post_lines if ln.upstreams == [victim]]
    assert failed_posts and all(ln.status == 502 for ln in failed_posts)

    # No data lost: every acknowledged hold is in the database, the 502s left nothing behind,
    # and the buyers' retries of those succeed on the survivor.
    held = {r.json()["reservation_id"] for r in posts if r.status_code == 201}
    rows = await db.fetch(
        "SELECT r.id, r.user_id FROM reservations r WHERE r.event_id = $1 AND r.status = 'held'",
        eid,
    )
    assert {r["id"] for r in rows} == held
    lost = [i for i, r in enumerate(posts) if r.status_code == 502]
    assert not {int(buyers[i]["id"]) for i in lost} & {int(r["user_id"]) for r in rows}
    for i in lost:
        r = await http.post(
            f"/api/events/{eid}/holds", json={"seat_ids": [seats[i]]}, headers=bearer(buyers[i])
        )
        assert r.status_code == 201, r.text
    count = await db.fetchval(
        "SELECT count(*) FROM reservations WHERE event_id = $1 AND status = 'held'", eid
    )
    assert count == len(posts)
    assert site.webs[survivor_port].poll() is None
    # The survivor serves everything now, straight away (the victim is marked down).
    before = len(site.proxy.access_log())
    r = await http.get(f"/api/events/{eid}")
    assert r.status_code == 200
    assert site.proxy.access_log()[before:][-1].upstreams == [survivor]
    write_result(
        "nginx_failover.md",
        "nginx in front of two web processes: one frozen, then killed",
        f"- {len(get_lines)} GETs in flight: {len(retried)} reached the frozen process and were"
        f" retried by nginx on the other; all {len(get_lines)} answered 200\n"
        f"- {len(post_lines)} holds (POST) in flight: {len(failed_posts)} reached the frozen"
        f" process and were answered 502, not retried; {len(post_lines) - len(failed_posts)}"
        " answered 201\n"
        f"- database: every 201 is a held reservation; the {len(lost)} refused holds left no row"
        " and succeeded when the buyers retried them\n"
        "- access log lines (method, URI, status, upstreams tried, their statuses):\n\n"
        + "".join(
            f"      {ln.method} {ln.uri} {ln.status} {', '.join(ln.upstreams)}"
            f" [{', '.join(ln.upstream_statuses)}]\n"
            for ln in lines
        ),
    )


def write_result(name: str, title: str, text: str) -> None:
    """Keep what the test saw when TEST_RESULTS_DIR names a directory (docs/results)."""
    folder = os.environ.get("TEST_RESULTS_DIR")
    if folder:
        header = f"# {title}\n\nWritten by tests/test_nginx.py (TEST_RESULTS_DIR set).\n\n"
        (Path(folder) / name).write_text(header + text)
