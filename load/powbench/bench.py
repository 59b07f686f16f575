"""Proof-of-work benchmark: server CPU per verification, client time per solution.

Three measurements, side by side in one run:
  verify   `ChallengeSigner.verify` (one HMAC + one SHA-256) called in a loop: process CPU time
           per call, and wall-time p50/p95 of single calls;
  python   `waitingroom.pow.solve` (the Locust buyers' solver) on fresh challenges;
  chromium the app's own static/js/pow.js (Web Crypto) in headless Chromium via
           Playwright, timed inside the page with performance.now().
Every solution is checked with the server's verifier. The browser page is served by Playwright
request interception from http://127.0.0.1 (a secure context, as Web Crypto needs), so no
server process competes for the CPU.

    .venv/bin/python -m load.powbench [--quick]

Writes docs/results/powbench.csv and docs/results/powbench.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from waitingroom.pow import ChallengeSigner, solve

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
POW_JS = ROOT / "static" / "js" / "pow.js"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ORIGIN = "http://127.0.0.1:9"
SECRET = "powbench-secret-of-sufficient-length"
EVENT = "1"
# difficulty -> samples (full run); --quick divides by 4.
PYTHON_PLAN = {8: 200, 10: 200, 12: 200, 14: 100, 16: 60, 18: 20, 20: 10}
CHROMIUM_PLAN = {8: 100, 10: 100, 12: 100, 13: 80, 14: 80, 15: 50, 16: 30}
VERIFY_CALLS = 50_000


@dataclass(frozen=True)
class Row:
    kind: str
    difficulty: int
    samples: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    max_ms: float


def summarise(kind: str, difficulty: int, seconds: list[float]) -> Row:
    ms = sorted(s * 1000 for s in seconds)
    p95 = statistics.quantiles(ms, n=20, method="inclusive")[-1] if len(ms) > 1 else ms[0]
    return Row(
        kind,
        difficulty,
        len(ms),
        round(statistics.median(ms), 6),
        round(p95, 6),
        round(statistics.fmean(ms), 6),
        round(ms[-1], 6),
    )


def bench_verify(signer: ChallengeSigner, calls: int) -> tuple[Row, float]:
    """(wall-time row of single calls, CPU microseconds per call over the whole loop)."""
    challenge = signer.issue(EVENT, 14)
    nonce = solve(challenge.token, 14)
    cpu_started = time.process_time()
    for _ in range(calls):
        signer.verify(challenge.token, nonce, EVENT, 14)
    cpu_us = (time.process_time() - cpu_started) / calls * 1e6
    singles = []
    for _ in range(min(calls, 20_000)):
        started = time.perf_counter()
        signer.verify(challenge.token, nonce, EVENT, 14)
        singles.append(time.perf_counter() - started)
    return summarise("verify", 14, singles), cpu_us


def bench_python(signer: ChallengeSigner, plan: dict[int, int]) -> list[Row]:
    rows = []
    for difficulty, samples in plan.items():
        seconds = []
        for _ in range(samples):
            challenge = signer.issue(EVENT, difficulty)
            started = time.perf_counter()
            nonce = solve(challenge.token, difficulty)
            seconds.append(time.perf_counter() - started)
            signer.verify(challenge.token, nonce, EVENT, difficulty)
        rows.append(summarise("python", difficulty, seconds))
        print(f"python   d={difficulty:2d} {rows[-1]}", flush=True)
    return rows


def bench_chromium(signer: ChallengeSigner, plan: dict[int, int]) -> tuple[list[Row], str]:
    from playwright.sync_api import Route, sync_playwright

    script = POW_JS.read_text()

    def serve(route: Route) -> None:
        if route.request.url.endswith("/static/js/pow.js"):
            route.fulfill(body=script, content_type="text/javascript")
        else:
            page_html = (
                '<html><body>powbench<script src="/static/js/pow.js"></script></body></html>'
            )
            route.fulfill(body=page_html, content_type="text/html")

    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        version = browser.version
        try:
            page = browser.new_page()
            page.route(f"{ORIGIN}/**", serve)
            page.goto(f"{ORIGIN}/bench")
            page.evaluate("async () => window.powHeaders(0, {challenge: 'warm-up', difficulty: 8})")
            for difficulty, samples in plan.items():
                seconds = []
                for _ in range(samples):
                    challenge = signer.issue(EVENT, difficulty)
                    elapsed_ms, nonce = page.evaluate(
                        """async (c) => {
                          const t0 = performance.now();
                          const h = await window.powHeaders(0, c);
                          return [performance.now() - t0, h["X-PoW-Nonce"]];
                        }""",
                        {"challenge": challenge.token, "difficulty": difficulty},
                    )
                    signer.verify(challenge.token, nonce, EVENT, difficulty)
                    seconds.append(elapsed_ms / 1000)
                rows.append(summarise("chromium", difficulty, seconds))
                print(f"chromium d={difficulty:2d} {rows[-1]}", flush=True)
        finally:
            browser.close()
    return rows, version


def write(rows: list[Row], cpu_us: float, meta: dict[str, str]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with (RESULTS / "powbench.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    verify = next(r for r in rows if r.kind == "verify")
    lines = [
        "# Proof-of-work benchmark",
        "",
        f"Written by `python -m load.powbench` at {meta['when']}. {meta['machine']}",
        "",
        "## Server: one verification",
        "",
        f"- CPU per verification: **{cpu_us:.2f} µs** (process time over {meta['calls']} calls:"
        " one HMAC-SHA-256 of the challenge, one SHA-256 of challenge + nonce; the same at every"
        " difficulty).",
        f"- Wall time of a single call: p50 {verify.p50_ms * 1000:.2f} µs,"
        f" p95 {verify.p95_ms * 1000:.2f} µs.",
        "- Single use costs one Redis `SET NX PX`, inside the Lua script that also counts the"
        " address's joins (one round trip for both).",
        "",
        "## Client: time per solution",
        "",
        "Expected work is 2^difficulty SHA-256 hashes; the time is geometric, so p95 is about"
        " 3x the mean. Chromium: headless, the app's `static/js/pow.js`"
        f" (Web Crypto, batches of digests), {meta['chromium']}. Python: `waitingroom.pow.solve`"
        " (hashlib, the Locust buyers' solver).",
        "",
        "| solver | difficulty (bits) | samples | p50 ms | p95 ms | mean ms | max ms"
        " | hashes/s (2^d / mean) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r.kind == "verify":
            continue
        rate = 2**r.difficulty / (r.mean_ms / 1000) if r.mean_ms else 0.0
        lines.append(
            f"| {r.kind} | {r.difficulty} | {r.samples} | {r.p50_ms:.1f} | {r.p95_ms:.1f}"
            f" | {r.mean_ms:.1f} | {r.max_ms:.1f} | {rate:,.0f} |"
        )
    chromium = {r.difficulty: r for r in rows if r.kind == "chromium"}
    fits = [d for d, r in chromium.items() if r.p95_ms <= 1000]
    if fits:
        lines += [
            "",
            f"Hardest difficulty with Chromium p95 ≤ 1 s in this run: **{max(fits)} bits**."
            " The default `POW_DIFFICULTY` is 14: 16,384 hashes expected, for a bot farm the"
            " same again per join on top of the per-address join limit.",
        ]
    python = {r.difficulty: r for r in rows if r.kind == "python"}
    shared = sorted(set(python) & set(chromium))
    if shared:
        ratios = ", ".join(
            f"{d}: {chromium[d].mean_ms / python[d].mean_ms:.0f}x"
            for d in shared
            if python[d].mean_ms
        )
        lines += [
            "",
            f"Mean time Chromium / Python by difficulty: {ratios}. A bot with native code is"
            " faster still than Python: the proof of work prices a join, it does not forbid one.",
        ]
    (RESULTS / "powbench.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the samples")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium solver")
    args = parser.parse_args()
    scale = 4 if args.quick else 1
    signer = ChallengeSigner(SECRET)
    load_before = os.getloadavg()[0]
    verify_row, cpu_us = bench_verify(signer, VERIFY_CALLS // scale)
    print(f"verify: {cpu_us:.2f} µs CPU per call; {verify_row}", flush=True)
    rows = [verify_row]
    rows += bench_python(signer, {d: max(5, n // scale) for d, n in PYTHON_PLAN.items()})
    chromium = "not run"
    if not args.no_browser:
        browser_rows, version = bench_chromium(
            signer, {d: max(5, n // scale) for d, n in CHROMIUM_PLAN.items()}
        )
        rows += browser_rows
        chromium = f"Chromium {version}"
    machine = (
        f"Machine: {os.cpu_count()} CPUs, {platform.python_implementation()}"
        f" {platform.python_version()}, load average {load_before:.2f} before and"
        f" {os.getloadavg()[0]:.2f} after the run (shared with other work: absolute times"
        " are pessimistic, ratios hold)."
    )
    write(
        rows,
        cpu_us,
        {
            "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine,
            "chromium": chromium,
            "calls": f"{VERIFY_CALLS // scale:,}",
        },
    )
    print(f"wrote {RESULTS / 'powbench.md'} and powbench.csv")
