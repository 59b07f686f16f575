"""`python -m load.swarm`: a distributed Locust surge of ≥ 10,000 buyers, accounted for.

One Locust master and several worker processes on this box drive `--buyers` buyers arriving at
`--buyers / --arrival-seconds` per second over several events (proof of work → join → poll →
hold → pay). `--redis-cluster` runs the service on a fresh Redis Cluster (3 masters + 3
replicas, RQ on its own redis-server), `--nginx` puts nginx in front of the web processes.
Bounded: Locust stops after `--run-seconds`, payments get ≤ 30 s to settle, every process is
stopped by PID. Writes docs/results/<name>.{md,json}, <name>_locust.html and <name>_stats*.csv,
<name> saying the configuration (`swarm_cluster_nginx_pow14`, …; `--name` overrides it).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from load.accounts import create_users
from load.swarm.accounting import account, database_facts, joins_counted_by_redis, load_outcomes
from load.swarm.distributed import (
    NGINX_WORKERS,
    RedisLayout,
    nginx_in_front,
    redis_cluster,
    single_redis,
)
from load.swarm.report import markdown
from load.swarm.stack import LIMITS_OFF, ROOT, Service, box_cpu, process_cpu_seconds
from ops.nginx_proc import NginxProxy
from ops.processes import stop_processes

# Locust master and workers, once the master has told the workers to quit.
LOCUST_STOP_SECONDS = 15.0

RESULTS = ROOT / "docs" / "results"
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
SETTLE_SECONDS = 30.0
SAMPLE_SECONDS = 5.0
LOCUST_START_SECONDS = 10.0  # from the sampler's start to Locust's first buyer, about
ACCOUNT_SPARE_PER_WORKER = 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--buyers", type=int, default=10_000)
    p.add_argument("--arrival-seconds", type=float, default=250.0, help="≤ 300")
    p.add_argument("--run-seconds", type=int, default=330, help="Locust's -t; ≤ 420")
    p.add_argument("--events", type=int, default=5)
    p.add_argument("--seats-per-event", type=int, default=200)
    p.add_argument("--admit-per-second", type=int, default=8, help="per event")
    p.add_argument("--max-active", type=int, default=150, help="per event")
    p.add_argument("--poll-seconds", type=float, default=5.0)
    p.add_argument("--patience-seconds", type=float, default=150.0)
    p.add_argument("--locust-workers", type=int, default=3)
    p.add_argument("--web-processes", type=int, default=2)
    p.add_argument("--rq-workers", type=int, default=4)
    p.add_argument(
        "--pow-difficulty",
        type=int,
        default=14,
        help="proof-of-work bits each join costs (the service's default 14; 0 = off)",
    )
    p.add_argument(
        "--redis-cluster",
        action="store_true",
        help="a fresh Redis Cluster (3 masters + 3 replicas) instead of one Redis",
    )
    p.add_argument(
        "--cluster-base-port",
        type=int,
        default=None,
        help="the cluster's nodes: this port + 0..5, RQ's redis-server + 6 (default: free"
        " ports in 20000-29999)",
    )
    p.add_argument("--nginx", action="store_true", help="nginx in front of the web processes")
    p.add_argument("--name", help="results file stem (default: from the configuration)")
    p.add_argument("--out", type=Path, default=RESULTS, help="where the results go")
    p.add_argument(
        "--smoke", action="store_true", help="300 buyers in ≤ 60 s, results in a temp dir"
    )
    args = p.parse_args(argv)
    if args.smoke:
        args.buyers, args.arrival_seconds, args.run_seconds = 300, 10.0, 40
        args.events, args.seats_per_event, args.locust_workers = 2, 60, 2
        args.poll_seconds, args.patience_seconds = 1.0, 20.0
        args.admit_per_second, args.max_active = 20, 100
        if args.out == RESULTS:  # never overwrite the full run's results
            args.out = Path(tempfile.mkdtemp(prefix="swarm-smoke-"))
    if args.arrival_seconds > 300 or args.run_seconds > 420:
        p.error("the run is bounded: --arrival-seconds ≤ 300, --run-seconds ≤ 420")
    if args.name is None:  # the smoke's results go to a temporary directory: plain names
        args.name = "swarm" if args.smoke else results_name(args)
    return args


def results_name(args: argparse.Namespace) -> str:
    """`swarm` plus what differs from the first runs (one Redis, uvicorn direct, no PoW)."""
    parts = ["swarm"]
    if args.redis_cluster:
        parts.append("cluster")
    if args.nginx:
        parts.append("nginx")
    if args.pow_difficulty:
        parts.append(f"pow{args.pow_difficulty}")
    if args.buyers != 10_000:
        parts.append(f"{args.buyers}buyers")
    return "_".join(parts)


def create_events(service: Service, args: argparse.Namespace) -> list[int]:
    """The events, each with its waiting room and `--pow-difficulty` (created on the web
    processes directly: setup is not part of the measured traffic)."""
    ids = []
    per_row = 25 if args.seats_per_event % 25 == 0 else args.seats_per_event
    with httpx.Client(base_url=service.base_url, timeout=30, headers=service.admin()) as http:
        for i in range(args.events):
            r = http.post(
                "/api/admin/events",
                json={
                    "name": f"Swarm {i} {uuid.uuid4().hex[:4]}",
                    "starts_at": "2030-01-01T20:00:00+00:00",
                    "seats": [
                        {
                            "section": "A",
                            "rows": args.seats_per_event // per_row,
                            "seats_per_row": per_row,
                            "price": 8000,
                        }
                    ],
                    "waiting_room_enabled": True,
                    "pow_difficulty": args.pow_difficulty,
                },
            )
            r.raise_for_status()
            eid = int(r.json()["id"])
            http.patch(
                f"/api/admin/events/{eid}/waiting-room",
                json={
                    "admit_per_second": args.admit_per_second,
                    "max_active": args.max_active,
                    "admission_window_seconds": 60,
                },
            ).raise_for_status()
            ids.append(eid)
    return ids


async def create_accounts(database_url: str, n: int) -> list[list[Any]]:
    """n buyer accounts straight into PostgreSQL (load/accounts.py); returns
    [[user id, token], ...] for the Locust workers."""
    return [
        [user_id, token] for user_id, token in await create_users(database_url, n, "Swarm buyer")
    ]


def find_pids(match: str) -> list[int]:
    """Processes whose command line contains `match` (for Redis/PostgreSQL CPU figures)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if match in cmd:
                pids.append(int(entry.name))
    return pids


class CpuSampler(threading.Thread):
    """CPU seconds per role every SAMPLE_SECONDS, from /proc (each role: a list of pids)."""

    def __init__(self, roles: dict[str, list[int]]) -> None:
        super().__init__(daemon=True)
        self.roles = roles
        self.samples: list[dict[str, Any]] = []
        self.stop_event = threading.Event()

    def snapshot(self) -> dict[str, Any]:
        per_pid = {
            role: {p: process_cpu_seconds(p) for p in pids} for role, pids in self.roles.items()
        }
        busy, total = box_cpu()
        return {"t": time.monotonic(), "box_busy": busy, "box_total": total, "pids": per_pid}

    @staticmethod
    def _delta(a: dict[str, Any], b: dict[str, Any], role: str) -> float:
        """CPU seconds `role` used between snapshots (a pid new in `b` counts from 0)."""
        before = a["pids"].get(role, {})
        after: dict[int, float] = b["pids"].get(role, {})
        return sum(v - float(before.get(p, 0.0)) for p, v in after.items() if v)

    def run(self) -> None:
        self.samples.append(self.snapshot())
        while not self.stop_event.wait(SAMPLE_SECONDS):
            self.samples.append(self.snapshot())
        self.samples.append(self.snapshot())

    def summary(self, cores: int, arrival_seconds: float) -> dict[str, Any]:
        """Per role: mean and peak share of one core over the windows, and the mean over the
        windows while buyers arrived (the run's first `arrival_seconds`, plus Locust's start:
        the whole-run mean also counts the quiet tail); the box's busy share."""
        out: dict[str, Any] = {}
        pairs = list(zip(self.samples, self.samples[1:], strict=False))
        t0 = self.samples[0]["t"] if self.samples else 0.0
        arriving = [b["t"] - t0 <= arrival_seconds + LOCUST_START_SECONDS for _, b in pairs]
        for role in [*self.roles, "box"]:
            shares = []
            for a, b in pairs:
                if role == "box":
                    total = b["box_total"] - a["box_total"]
                    shares.append(
                        100 * cores * (b["box_busy"] - a["box_busy"]) / total if total else 0
                    )
                else:
                    shares.append(100 * self._delta(a, b, role) / max(1e-9, b["t"] - a["t"]))
            if shares:
                out[role] = {
                    "mean_pct_of_a_core": round(sum(shares) / len(shares), 1),
                    "peak_pct_of_a_core": round(max(shares), 1),
                    "arrival_mean_pct_of_a_core": round(
                        sum(v for v, a in zip(shares, arriving, strict=True) if a)
                        / max(1, sum(arriving)),
                        1,
                    ),
                }
        out["timeline"] = [
            {
                "t": round(b["t"] - self.samples[0]["t"]),
                **{
                    r: round(100 * self._delta(a, b, r) / max(1e-9, b["t"] - a["t"]))
                    for r in self.roles
                },
            }
            for a, b in pairs
        ]
        return out


def run_locust(
    args: argparse.Namespace,
    base_url: str,
    event_ids: list[int],
    out: Path,
    outcomes: Path,
) -> int:
    """Master + workers against `base_url`; returns the master's exit code."""
    port = free_port()
    env = {
        **os.environ,
        "SWARM_EVENTS": json.dumps(event_ids),
        "SWARM_ACCOUNTS": str(outcomes / "accounts.json"),
        "SWARM_LOCUST_WORKERS": str(args.locust_workers),
        "SWARM_OUTCOMES_DIR": str(outcomes),
        "SWARM_POLL_SECONDS": str(args.poll_seconds),
        "SWARM_PATIENCE_SECONDS": str(args.patience_seconds),
    }
    locust = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--loglevel", "WARNING"]
    rate = args.buyers / args.arrival_seconds
    master_cmd = [
        *locust,
        "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
        "--expect-workers", str(args.locust_workers), "--expect-workers-max-wait", "60",
        "--headless", "-u", str(args.buyers), "-r", f"{rate:.3f}",
        "-t", f"{args.run_seconds}s", "--stop-timeout", "5",
        "--host", base_url,
        "--html", str(out / f"{args.name}_locust.html"), "--csv", str(outcomes / "locust"),
        "--only-summary",
    ]  # fmt: skip
    worker_cmd = [
        *locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port),
    ]  # fmt: skip
    log = (outcomes / "locust.log").open("wb")
    master = subprocess.Popen(master_cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    workers = [
        subprocess.Popen(worker_cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(args.locust_workers)
    ]
    procs = [master, *workers]
    try:
        master.wait(timeout=args.run_seconds + 120)
        # The master told the workers to quit: let them write their unfinished journeys.
        for worker in workers:
            worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        print("swarm: locust overran its bound; stopping it", flush=True)
    finally:
        stop_processes(procs, LOCUST_STOP_SECONDS)
        log.close()
    return int(master.returncode or 0)


async def settle(database_url: str, event_ids: list[int]) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < deadline:
            pending = await conn.fetchval(
                "SELECT count(*) FROM payments p JOIN reservations r ON r.id = p.reservation_id"
                " WHERE p.status = 'pending' AND r.event_id = ANY($1::bigint[])",
                event_ids,
            )
            if pending == 0:
                return
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


def load_over_time(csv_path: Path, step_seconds: int = 30) -> list[dict[str, Any]]:
    """Locust's aggregated window figures every `step_seconds`: where the run started to hurt."""
    if not csv_path.exists():
        return []
    with csv_path.open() as f:
        rows = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated"]
    out: list[dict[str, Any]] = []
    t0 = int(rows[0]["Timestamp"]) if rows else 0
    for r in rows:
        t = int(r["Timestamp"]) - t0
        if not out or t >= out[-1]["t"] + step_seconds:
            out.append(
                {
                    "t": t,
                    "users": int(r["User Count"]),
                    "rps": round(float(r["Requests/s"]), 1),
                    "fails_per_s": round(float(r["Failures/s"]), 1),
                    "p50_ms": r["50%"],
                    "p95_ms": r["95%"],
                }
            )
    return out


def route_stats(csv_path: Path) -> list[dict[str, str]]:
    if not csv_path.exists():
        return []
    with csv_path.open() as f:
        return list(csv.DictReader(f))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    database_url = os.environ.get(
        "SWARM_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/ticketing_swarm"
    )
    redis_url = os.environ.get("SWARM_REDIS_URL", "redis://127.0.0.1:6379/10")
    work = Path(tempfile.mkdtemp(prefix="swarm-"))
    started = time.time()
    load_at_start = round(os.getloadavg()[0], 2)
    layout: RedisLayout | None = None
    service: Service | None = None
    proxy: NginxProxy | None = None
    try:
        if args.redis_cluster:
            layout = redis_cluster(args.cluster_base_port)
            assert layout.cluster is not None
            args.cluster_base_port = layout.cluster.ports[0]
            print(f"swarm: a Redis Cluster on ports {layout.cluster.ports}", flush=True)
        else:
            layout = single_redis(redis_url)
        web_ports = [free_port() for _ in range(args.web_processes)]
        service = Service(
            database_url,
            layout,
            web_ports,
            args.rq_workers,
            args.pow_difficulty,
            one_port=not args.nginx,
        )
        print(f"swarm: starting the service ({service.log_dir})", flush=True)
        service.start()
        base_url = service.base_url
        if args.nginx:
            proxy = nginx_in_front(free_port(), service.web_ports, args.buyers)
            base_url = proxy.url
        event_ids = create_events(service, args)
        # Each Locust worker takes every n-th account: a few spare ones absorb uneven shares.
        spare = ACCOUNT_SPARE_PER_WORKER * args.locust_workers
        accounts = asyncio.run(create_accounts(database_url, args.buyers + spare))
        (work / "accounts.json").write_text(json.dumps(accounts))
        roles: dict[str, list[int]] = {**service.pids(), **layout.pids()}
        if layout.cluster is None:
            redis_port = redis_url.rsplit(":", 1)[1].split("/")[0]
            roles["redis"] = (
                find_pids(f"redis-server 127.0.0.1:{redis_port}")
                or find_pids(f"redis-server *:{redis_port}")
                or find_pids(f"--port {redis_port}")
            )
        if proxy is not None:
            roles["nginx"] = proxy.pids()
        roles["postgres_all_sessions"] = find_pids("postgres")
        rate = args.buyers / args.arrival_seconds
        print(
            f"swarm: {args.buyers} buyers at {rate:.1f}/s over {args.arrival_seconds:.0f} s,"
            f" {args.locust_workers} Locust workers, events {event_ids}, PoW"
            f" {args.pow_difficulty} bits, against {base_url}",
            flush=True,
        )
        # Locust's own pids are only known once it starts: sample them by name.
        sampler = CpuSampler({**roles, "locust": []})
        locust_started = time.monotonic()

        def watch_locust() -> None:
            while not sampler.stop_event.is_set() and not sampler.roles["locust"]:
                sampler.roles["locust"] = find_pids(str(LOCUSTFILE))
                time.sleep(0.5)

        threading.Thread(target=watch_locust, daemon=True).start()
        sampler.start()
        code = run_locust(args, base_url, event_ids, args.out, work)
        sampler.stop_event.set()
        sampler.join(timeout=10)
        locust_seconds = time.monotonic() - locust_started
        asyncio.run(settle(database_url, event_ids))
        db = asyncio.run(database_facts(database_url, event_ids))
        joins = joins_counted_by_redis(layout, event_ids)
        spread = layout.spread(event_ids)
    finally:
        if proxy is not None:
            proxy.stop()
        if service is not None:
            service.stop()
        if layout is not None:
            layout.stop()
    journeys = load_outcomes(work)
    accounting = account(journeys, db, joins, args.buyers)
    accounting["locust_pids_sampled"] = len(sampler.roles["locust"])
    cores = os.cpu_count() or 1
    report: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": {
            "cores": cores,
            "python": platform.python_version(),
            "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        },
        "parameters": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "arrival_rate_per_second": round(args.buyers / args.arrival_seconds, 1),
            "server_env_limits_off": LIMITS_OFF,
            "nginx_workers": NGINX_WORKERS if args.nginx else 0,
            "loadavg_1m_at_start": load_at_start,
            "hold_seconds": 60,
            "payment_latency_ms": 200,
            "payment_failure_rate": 0.02,
        },
        "locust_exit_code": code,
        "locust_seconds": round(locust_seconds, 1),
        "accounting": accounting,
        "database": {k: v for k, v in db.items() if k != "paid_user_ids"},
        "journeys": journey_figures(journeys),
        "cpu": sampler.summary(cores, args.arrival_seconds),
        "redis_cluster_spread": spread,
        "routes": route_stats(work / "locust_stats.csv"),
        "load_over_time": load_over_time(work / "locust_stats_history.csv"),
    }
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"{args.name}.md").write_text(markdown(report))
    for name in ("stats", "stats_history"):
        source = work / f"locust_{name}.csv"
        if source.exists():
            (args.out / f"{args.name}_{name}.csv").write_text(source.read_text())
    print((args.out / f"{args.name}.md").read_text(), flush=True)
    print(f"swarm: results in {args.out}; outcome files in {work}", flush=True)
    if not accounting["all_checks_pass"]:
        raise SystemExit("swarm: the accounting check failed (see swarm.md)")


def journey_figures(journeys: list[dict[str, Any]]) -> dict[str, Any]:
    def quantiles(values: list[float]) -> dict[str, float] | None:
        if not values:
            return None
        values = sorted(values)

        def pick(q: float) -> float:
            return values[min(len(values) - 1, int(q * len(values)))]

        return {"n": len(values), "p50": round(pick(0.5), 2), "p95": round(pick(0.95), 2)}

    waits = [j["admitted_at"] - j["joined_at"] for j in journeys if "admitted_at" in j]
    pow_ms = [float(j["pow_cpu_ms"]) for j in journeys if j.get("pow_difficulty")]
    pays = [j["settled_at"] - j["pay_requested_at"] for j in journeys if "settled_at" in j]
    starts = [j["started"] for j in journeys]
    # Concurrent buyers: journeys in progress, sampled every second of the run.
    concurrent = 0
    if starts:
        t0, t1 = int(min(starts)), int(max(j["ended"] for j in journeys)) + 1
        spans = [(j["started"], j["ended"]) for j in journeys]
        concurrent = max(
            sum(1 for a, b in spans if a <= t < b) for t in range(t0, t1, max(1, (t1 - t0) // 200))
        )
    return {
        "admission_wait_seconds": quantiles(waits),
        "payment_request_to_settled_seconds": quantiles(pays),
        "peak_concurrent_buyers": concurrent,
        "pow_solve_cpu_ms": quantiles(pow_ms),
        "pow_solve_cpu_seconds_total": round(sum(pow_ms) / 1000, 1),
        "polls_per_waiting_buyer": quantiles(
            [float(j.get("polls", 0)) for j in journeys if "ticket" in j]
        ),
    }
