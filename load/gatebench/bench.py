"""Gate and token-API benchmark (issue 15 targets), wrk (Debian's) against the real app.

    python -m load.gatebench.bench [--rounds 3] [--seconds 5]

Starts one uvicorn app process (a database and a Redis of its own, load/harness.py) and a throwaway
nginx (load/gatebench/nginxconf.py) with two sites in front of the same trivial upstream: one
through the gate (auth_request to the app), one direct. Rounds alternate, side by side:

1. server CPU per request of `POST /api/admission/verify` vs the bare `GET /healthz` (utime +
   stime of the app process from /proc, divided by the requests wrk completed);
2. latency of an admitted request through the gate vs nginx serving the upstream directly
   (wrk, 4 connections, p50 and p99), plus the app's CPU per gated request.

Every round first fetches fresh tokens (they live 60 s). Writes docs/results/gatebench.md and
gatebench.csv. The cores are shared with whatever else runs: compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt

from load.gatebench.nginxconf import Site, render, start_nginx, stop_nginx
from load.harness import ROOT, Stack, free_port, machine
from waitingroom.signing import KeyRing

RESULTS = ROOT / "docs" / "results"
CONNECTIONS = 4
TOKEN_TTL_SECONDS = 60  # the app's default ADMISSION_TOKEN_TTL_SECONDS
MANY_TOKENS = 8000  # more than one run verifies, so none repeats
_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}

COUNT_NON_200 = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body) if status ~= 200 then bad = bad + 1 end end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("bad") end
  io.write(string.format("NON200 %d\\n", total))
end
"""


@dataclass(frozen=True)
class Round:
    kind: str
    round: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_200: int
    cpu_us_per_request: float


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _latency(text: str, pct: str) -> float:
    m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if m is None:
        raise RuntimeError(f"no {pct}% latency in wrk output:\n{text}")
    return float(m.group(1)) * _UNIT[m.group(2)]


def wrk(
    url: str, seconds: int, script: Path, headers: dict[str, str], app_pid: int
) -> tuple[int, float, float, float, int, float]:
    """(requests, rps, p50 ms, p99 ms, non-200, app CPU seconds) of one wrk run."""
    args = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(script)]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    before = cpu_seconds(app_pid)
    out = subprocess.run(
        [*args, url], capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    cpu = cpu_seconds(app_pid) - before
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non_200 = int(re.search(r"NON200 (\d+)", out).group(1))  # type: ignore[union-attr]
    return requests, rps, _latency(out, "50"), _latency(out, "99"), non_200, cpu


def _event(stack: Stack) -> int:
    r = httpx.post(
        f"{stack.base_url}/api/admin/events",
        json={
            "name": "gatebench",
            "starts_at": "2030-01-01T20:00:00+00:00",
            "seats": [{"section": "A", "rows": 1, "seats_per_row": 1, "price": 1}],
            "waiting_room_enabled": True,
        },
        headers=stack.admin_headers(),
    )
    r.raise_for_status()
    event_id = int(r.json()["id"])
    httpx.patch(
        f"{stack.base_url}/api/admin/events/{event_id}/waiting-room",
        json={"admit_per_second": 100, "max_active": 1000, "admission_window_seconds": 3600},
        headers=stack.admin_headers(),
    ).raise_for_status()
    return event_id


def _wait_admitted(client: httpx.Client, url: str) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = client.get(url)
        if r.status_code == 200 and r.json()["status"] == "admitted":
            return r
        time.sleep(0.6)
    raise RuntimeError(f"not admitted in time: {url}")


class Buyers:
    """One app buyer (bearer + admission token) and one gate visitor (admission cookie)."""

    def __init__(self, stack: Stack, event_id: int) -> None:
        self.base = stack.base_url
        self.event_id = event_id
        self.client = httpx.Client(base_url=stack.base_url, timeout=10)
        user = self.client.post(
            "/api/users", json={"name": "Bench", "email": f"bench.{time.time_ns()}@example.com"}
        ).json()
        r = self.client.post(
            f"/api/events/{event_id}/queue", headers={"Authorization": f"Bearer {user['token']}"}
        )
        self.ticket = r.json()["ticket"]
        self.visitor = httpx.Client(base_url=stack.base_url, timeout=10)
        assert self.visitor.post(f"/gate/{event_id}/join").status_code == 201

    def token(self) -> str:
        r = _wait_admitted(self.client, f"/api/events/{self.event_id}/queue/{self.ticket}")
        return str(r.json()["admission_token"])

    def cookie(self) -> str:
        r = _wait_admitted(self.visitor, f"/gate/{self.event_id}/poll")
        name = f"wr_admission_{self.event_id}"
        return f"{name}={r.cookies[name]}"

    def close(self) -> None:
        self.client.close()
        self.visitor.close()

    def many_tokens(self, token: str, database: str) -> list[str]:
        """Distinct valid tokens of this buyer's admission, signed with the app's development
        key (Stack derives it from ADMISSION_SECRET): each one's signature is checked once."""
        claims = jwt.decode(token, options={"verify_signature": False})
        ring = KeyRing.development(f"load-secret-{database}")
        now = int(time.time())
        return [
            jwt.encode(
                {**claims, "iat": now, "exp": now + 50, "n": i},
                ring.signer,
                algorithm="EdDSA",
                headers={"kid": ring.signer_kid},
            )
            for i in range(MANY_TOKENS)
        ]


def _rotating_tokens_script(tokens: list[str]) -> str:
    bodies = ",\n".join(json.dumps(json.dumps({"token": t})) for t in tokens)
    return (
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"local bodies = {{\n{bodies}\n}}\nlocal i = 0\n"
        "request = function()\n  i = i % #bodies + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[i])\nend\n" + COUNT_NON_200
    )


def run(rounds: int, seconds: int, database: str | None) -> list[Round]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is required (Debian: apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="gatebench-"))
    results: list[Round] = []
    # The bench's buyers join without solving the proof of work: it is measured on its own
    # (load/powbench); here it is off, and the results say so.
    env = {"WEB_CONCURRENCY": "1", "POW_DIFFICULTY": "0"}
    with Stack("gatebench", workers=0, env=env, database=database) as stack:
        app_pid = stack.procs[0].pid
        event_id = _event(stack)
        buyers = Buyers(stack, event_id)
        gated, direct, upstream = free_port(), free_port(), free_port()
        sites = [Site(gated, upstream, event_id), Site(direct, upstream, None)]
        nginx = start_nginx(work, render(work, stack.port, sites), [gated, direct, upstream])
        try:
            # The revocation feed is trusted after one unbroken token lifetime; before that the
            # verify endpoint reads Redis (measured first, as "verify (feed warming up)").
            warm_until = time.monotonic() + TOKEN_TTL_SECONDS + 2
            count = work / "count.lua"
            count.write_text(COUNT_NON_200)
            warm_rounds = 0
            # Bounded: the warm-up rounds (about a minute) plus the rounds asked for.
            max_rounds = rounds + math.ceil((TOKEN_TTL_SECONDS + 2) / (4 * seconds)) + 1
            for i in range(1, max_rounds + 1):
                if warm_rounds >= rounds:
                    break
                token = buyers.token()
                verify = work / "verify.lua"
                verify.write_text(
                    'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                    f"wrk.body = {json.dumps(json.dumps({'token': token}))}\n" + COUNT_NON_200
                )
                warm = time.monotonic() >= warm_until
                warm_rounds += warm
                verify_kind = "verify" if warm else "verify (Redis read)"
                fresh = work / "verify_fresh.lua"
                fresh.write_text(_rotating_tokens_script(buyers.many_tokens(token, stack.database)))
                runs: list[tuple[str, str, Path, dict[str, str]]] = [
                    ("bare /healthz", f"{stack.base_url}/healthz", count, {}),
                    (verify_kind, f"{stack.base_url}/api/admission/verify", verify, {}),
                    (
                        verify_kind + ", new token each request",
                        f"{stack.base_url}/api/admission/verify",
                        fresh,
                        {},
                    ),
                    ("nginx direct", f"http://127.0.0.1:{direct}/page", count, {}),
                ]
                # A fresh cookie just before the gate runs: wrk keeps no cookies, so a token
                # past half its life would be renewed (Redis + signing) on every request.
                cookie = buyers.cookie()
                nonce = work / "gate_nonce.lua"
                nonce.write_text(
                    f"local cookie = {json.dumps(cookie)}\nlocal n = 0\n"
                    "request = function()\n  n = n + 1\n"
                    '  return wrk.format(nil, nil, {["Cookie"] = cookie .. "; n=" .. n})\nend\n'
                    + COUNT_NON_200
                )
                gate_page = f"http://127.0.0.1:{gated}/page"
                runs += [
                    ("nginx gate (admitted)", gate_page, count, {"Cookie": cookie}),
                    ("nginx gate (admitted, check not cached)", gate_page, nonce, {}),
                ]
                for kind, url, script, headers in runs:
                    n, rps, p50, p99, bad, cpu = wrk(url, seconds, script, headers, app_pid)
                    results.append(Round(kind, i, n, rps, p50, p99, bad, cpu / max(n, 1) * 1e6))
                    cpu_us = cpu / max(n, 1) * 1e6
                    print(
                        f"round {i} {kind:24s} {rps:9.0f} req/s p50 {p50:.3f} ms "
                        f"p99 {p99:.3f} ms non-200 {bad} app CPU {cpu_us:.0f} µs/req",
                        flush=True,
                    )
        finally:
            stop_nginx(nginx)
            buyers.close()
    return results


def _median(results: list[Round], kind: str, field: str) -> float:
    return float(statistics.median(getattr(r, field) for r in results if r.kind == kind))


def write(results: list[Round], seconds: int) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with (RESULTS / "gatebench.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(Round.__dataclass_fields__)
        for r in results:
            writer.writerow([getattr(r, k) for k in Round.__dataclass_fields__])
    kinds = list(dict.fromkeys(r.kind for r in results))
    rounds = max(r.round for r in results)
    warm = {r.round for r in results if r.kind == "verify"}
    bare_cpu = float(
        statistics.median(
            r.cpu_us_per_request for r in results if r.kind == "bare /healthz" and r.round in warm
        )
    )
    verify_cpu = _median(results, "verify", "cpu_us_per_request")
    cold = {r.round for r in results if r.kind == "verify (Redis read)"}
    redis_cpu = _median(results, "verify (Redis read)", "cpu_us_per_request") if cold else 0.0
    cold_bare = (
        float(
            statistics.median(
                r.cpu_us_per_request
                for r in results
                if r.kind == "bare /healthz" and r.round in cold
            )
        )
        if cold
        else 1.0
    )
    fresh_cpu = _median(results, "verify, new token each request", "cpu_us_per_request")
    direct_p50 = _median(results, "nginx direct", "p50_ms")
    gate_p50 = _median(results, "nginx gate (admitted)", "p50_ms")
    uncached = "nginx gate (admitted, check not cached)"
    uncached_added = statistics.median(
        g.p50_ms - d.p50_ms
        for d in results
        if d.kind == "nginx direct"
        for g in results
        if g.kind == uncached and g.round == d.round
    )
    # The added latency per round (each pair measured back to back), then its median.
    added = statistics.median(
        g.p50_ms - d.p50_ms
        for d in results
        if d.kind == "nginx direct"
        for g in results
        if g.kind == "nginx gate (admitted)" and g.round == d.round
    )
    m = machine()
    lines = [
        "# Gate and admission-token benchmark",
        "",
        "Written by `python -m load.gatebench.bench` (wrk, one uvicorn app process, Debian nginx "
        f"with one worker; {CONNECTIONS} connections, {seconds} s per run, {rounds} rotated rounds,"
        " medians). Server CPU = utime+stime of the app process from /proc per completed"
        " request. The proof of work on join is off (`POW_DIFFICULTY=0`; load/powbench measures"
        " it).",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, load average "
        f"{m['loadavg_1m']} at the end — shared with other work, so compare ratios within"
        " this run.",
        "",
        "| run | req/s | p50 ms | p99 ms | non-200 | app CPU µs/req |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind in kinds:
        rps, p50, p99 = (_median(results, kind, f) for f in ("rps", "p50_ms", "p99_ms"))
        cpu = _median(results, kind, "cpu_us_per_request")
        bad = sum(r.non_200 for r in results if r.kind == kind)
        lines.append(f"| {kind} | {rps:.0f} | {p50:.3f} | {p99:.3f} | {bad} | {cpu:.0f} |")
    lines += [
        "",
        f"- **verify vs bare, server CPU per request: {verify_cpu / bare_cpu:.2f} ×** "
        f"({verify_cpu:.0f} vs {bare_cpu:.0f} µs bare in the same rounds; target ≤ 1.5 ×):"
        " signature check cached per"
        " process, revocation from the pub/sub feed (trusted).",
        f"- **gate, added p50 latency of an admitted request: {added:.3f} ms** "
        f"({gate_p50:.3f} vs {direct_p50:.3f} ms direct; target ≤ 1 ms): the same buyer's"
        " cookie, so nginx's 5 s cache of the check's passes answers most requests.",
        f"- verify with a new token on every request (each signature checked):"
        f" {fresh_cpu / bare_cpu:.2f} × ({fresh_cpu:.0f} µs).",
        f"- gate with every request reaching the app's check (a new cookie string each time, so"
        f" nginx's 5 s pass cache never hits): {uncached_added:.3f} ms added at p50"
        f" ({_median(results, uncached, 'cpu_us_per_request'):.0f} µs app CPU per request).",
        *(
            [
                f"- verify while the revocation feed warms up (the first token lifetime after a"
                f" start; one Redis read per request): {redis_cpu / cold_bare:.2f} × "
                f"({redis_cpu:.0f} vs {cold_bare:.0f} µs bare in the same rounds)."
            ]
            if redis_cpu
            else []
        ),
        "- The gated runs' app CPU is the auth_request check (offline token verification, no"
        " Redis while the token has more than half its life).",
        "",
        "Per-round figures: `gatebench.csv`.",
        "",
    ]
    (RESULTS / "gatebench.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument(
        "--database", default=None, help="a new database's name (default: a unique one)"
    )
    args = parser.parse_args()
    if not 1 <= args.rounds <= 20 or not 1 <= args.seconds <= 60:
        raise SystemExit("--rounds must be 1..20 and --seconds 1..60")
    write(run(args.rounds, args.seconds, args.database), args.seconds)


if __name__ == "__main__":
    main()
