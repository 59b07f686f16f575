"""The surge report: the bottleneck diagnosis and docs/results/surge.md."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from load.harness import ROOT
from load.surge.run import SETTLE_SECONDS


def eviction_preview(trace: Path) -> list[str]:
    out = []
    for policy in ("lru", "lfu", "fifo"):
        try:
            r = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "load.eviction",
                    "--trace",
                    str(trace),
                    "--policy",
                    policy,
                    "--capacity",
                    "4",
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            out.append(r.stdout.strip() or r.stderr.strip().splitlines()[-1])
        except (subprocess.TimeoutExpired, IndexError) as exc:
            out.append(f"{policy}: {exc!r}")
    return out


def diagnosis(report: dict[str, Any]) -> list[str]:
    """A sentence on the bottleneck, when the numbers show one."""
    reasons = report["payments"]["failure_reasons"]
    expired = sum(v for k, v in reasons.items() if k.startswith("hold expired"))
    settled = sum(v["n"] for v in report["payments"]["seconds_in_db"].values())
    pending = report["checks"]["pending_after_settle"]
    if settled + pending and (expired + pending) / (settled + pending) > 0.1:
        hold = report["parameters"]["server_env"]["HOLD_SECONDS"]
        workers = report["parameters"]["workers"]
        return [
            f"**Bottleneck: payment completion.** {expired} payments failed because the hold"
            f" ({hold} s) expired while the job waited in the RQ queue, and {pending} were still"
            f" pending after the settle wait: {workers} worker(s) complete jobs one at a time"
            " (each pays the provider's latency), fewer per second than buyers pay. Workers are"
            " stateless: rerun with `--workers 3` to compare.",
            "",
        ]
    return []


def markdown(report: dict[str, Any]) -> str:
    m, p = report["machine"], report["parameters"]
    lines = [
        "# Surge simulation",
        "",
        f"- date: {report['date']}; wall time {report['seconds']} s",
        f"- machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; 1-minute load average"
        f" before the run {m.get('loadavg_1m', '?')}; Locust, one uvicorn"
        f" process, {p['workers']} RQ worker(s), PostgreSQL and Redis all share these cores",
        f"- command: `.venv/bin/python -m load.surge --users {p['users']} --spawn-rate"
        f" {p['spawn_rate']:g} --duration {p['duration']} --workers {p['workers']}`",
        f"- server env: `{json.dumps(p['server_env'])}`",
        f"- buyer mix: leave while waiting {p['mix']['leave_waiting']}, leave once admitted"
        f" {p['mix']['leave_admitted']}, let the hold expire {p['mix']['let_expire']}; 1-4 seats"
        " per hold, up to 4 attempts on 409",
        "",
        "## Events",
        "",
        "| event | kind | seats | demand weight | admit/s | max active | window s |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for e in report["events"]:
        lines.append(
            f"| {e['id']} | {e['kind']} | {e['seats']} | {e['weight']} | {e['admit_per_second']}"
            f" | {e['max_active']} | {e['window_seconds']} |"
        )
    lines += [
        "",
        "## Accounting of every admission",
        "",
        "joined = waiting at end + admitted (the waiting room's counter and, independently, the"
        " set rebuilt from its Redis hashes); admitted = held seats (PostgreSQL) + admitted"
        " buyers who did not hold (their own record) + admitted after the buyer had already left"
        " the queue (never claimed).",
        "",
        "| event | kind | joined | waiting at end | admitted (counter / set) | held | admitted,"
        " no hold | never claimed | explained | reservations | payments | seats sold / total |",
        "|---:|---|---:|---:|---:|---:|---|---|---:|---|---|---:|",
    ]

    def fmt(d: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(d.items())) or "-"

    totals: Counter[str] = Counter()
    for r in report["accounting"]:
        lines.append(
            f"| {r['event']} | {r['kind']} | {r['joined']} | {r['waiting_at_end']}"
            f" | {r['admitted_counter']} / {r['admitted_set']} | {r['held']}"
            f" | {fmt(r['admitted_no_hold'])} | {fmt(r['never_claimed'])} | {r['explained']}"
            f" | {fmt(r['reservations'])} | {fmt(r['payments'])}"
            f" | {r['seats_sold']} / {r['seats']} |"
        )
        for k in (
            "joined",
            "waiting_at_end",
            "admitted_counter",
            "held",
            "explained",
            "seats_sold",
        ):
            totals[k] += r[k]
    lines.append(
        f"| all | | {totals['joined']} | {totals['waiting_at_end']} | {totals['admitted_counter']}"
        f" | {totals['held']} | | | {totals['explained']} | | | {totals['seats_sold']} |"
    )
    c = report["checks"]
    lines += [
        "",
        f"Checks: seats sold twice **{c['seats_sold_twice']}**; seats in two active reservations"
        f" **{c['seats_active_twice']}**; paid reservations without a succeeded payment"
        f" **{c['paid_without_succeeded_payment']}**; succeeded payments whose reservation is not"
        f" paid **{c['succeeded_payment_not_paid']}**; reservations paid twice"
        f" **{c['reservations_with_two_successes']}**; payments still pending after"
        f" {SETTLE_SECONDS:.0f} s settle: **{c['pending_after_settle']}**.",
        "",
        "Problems: " + ("none" if not report["problems"] else "; ".join(report["problems"])),
        "",
        "Journey outcomes (buyers' own records): "
        + ", ".join(f"{k} {v}" for k, v in sorted(report["journey_outcomes"].items())),
        "",
        "Payment failures by reason: "
        + "; ".join(f"{k} {v}" for k, v in report["payments"]["failure_reasons"].items())
        + ". Payment request to settlement in the database: "
        + "; ".join(
            f"{k} n={v['n']} p50 {v['p50']} s p95 {v['p95']} s"
            for k, v in report["payments"]["seconds_in_db"].items()
        )
        + ".",
        "",
        *diagnosis(report),
        "Payment completion as buyers saw it (202 to paid/failed, 0.4 s polls): "
        + ", ".join(f"{k} {v}" for k, v in report["payment_latency"].items())
        + ".",
        "",
        "## Requests by route (Locust)",
        "",
        "| route | requests | failures | median ms | p95 ms | p99 ms | req/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in report["routes"]:
        lines.append(
            f"| {s['Type']} {s['Name']} | {s['Request Count']} | {s['Failure Count']}"
            f" | {s['Median Response Time']} | {s['95%']} | {s['99%']}"
            f" | {float(s['Requests/s']):.1f} |"
        )
    eta = report["eta_accuracy"]
    sh, cl = eta["server_histogram"], eta["client_observed"]
    lines += [
        "",
        "409 on holds and 429 on polls are expected answers (counted as successes); the"
        " per-ticket poll limit is 2/s and buyers honour Retry-After.",
        "",
        "## ETA accuracy",
        "",
        "Server: `waitingroom_eta_error_seconds` (ETA predicted at join minus the actual wait;"
        f" positive = pessimistic), {sh['count']} admissions: median in bucket"
        f" le {sh['median_bucket_le']}, p10 le {sh['p10_bucket_le']},"
        f" p90 le {sh['p90_bucket_le']}; share within: {sh['share_within']}.",
        "",
        f"Buyers: ETA at join vs the wait until their poll saw `admitted` ({cl['count']} buyers;"
        " includes up to 3 s of poll interval): "
        + ", ".join(f"{k} {v}" for k, v in cl.items() if k != "count")
        + ".",
        "",
        "## Trace",
        "",
        f"`{report['trace']['path']}`: {report['trace']['lines']} reads"
        f" ({report['trace']['distinct']} distinct keys: `seatmap:{{<event>}}` per seat-map read,"
        " `event:{<event>}` per event-page read). Replay:",
        "",
        *[f"    {line}" for line in report["trace"]["preview"]],
        "",
    ]
    return "\n".join(lines)
