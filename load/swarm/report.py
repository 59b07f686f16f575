"""<name>.md: the run's figures as the accounting and /proc saw them."""

from __future__ import annotations

from typing import Any


def topology(p: dict[str, Any]) -> str:
    """The service's parts, as run (older results have no cluster/nginx/PoW keys)."""
    if p.get("redis_cluster"):
        redis = (
            "a Redis Cluster of 3 masters + 3 replicas (Debian redis-server on loopback ports"
            f" {p['cluster_base_port']}-{p['cluster_base_port'] + 5}, keys under the prefix"
            " `swarm:`), RQ on its own redis-server"
        )
    else:
        redis = "one Redis"
    if p.get("nginx"):
        web = (
            f"nginx ({p['nginx_workers']} worker processes, ops/nginx/flashsale_proxy.conf) in"
            f" front of {p['web_processes']} uvicorn web processes on ports of their own"
        )
    else:
        web = f"{p['web_processes']} uvicorn web processes (one port, Locust direct)"
    return f"{web}, {p['rq_workers']} RQ worker processes, {redis}, PostgreSQL"


def pow_line(p: dict[str, Any], j: dict[str, Any]) -> str:
    bits = p.get("pow_difficulty", 0)
    if not bits:
        return "- No proof of work (`POW_DIFFICULTY=0`)."
    return (
        f"- Proof of work on: {bits} bits per join (2^{bits} SHA-256 expected), solved by the"
        " Locust buyers with the page's algorithm (load/pow_client.py); CPU per solve"
        f" {j.get('pow_solve_cpu_ms')} ms, {j.get('pow_solve_cpu_seconds_total')} CPU-seconds in"
        " all on the Locust side (the work buyers' browsers would do)."
    )


def markdown(r: dict[str, Any]) -> str:
    p, a, db, j, cpu = r["parameters"], r["accounting"], r["database"], r["journeys"], r["cpu"]
    lines = [
        "# Distributed Locust surge (`python -m load.swarm`)",
        "",
        f"Run {r['started']} on a {r['machine']['cores']}-core box shared with other work"
        f" (1-min load average {p['loadavg_1m_at_start']} at the start,"
        f" {r['machine']['loadavg_1m_at_end']} at the end).",
        "",
        "## What ran",
        f"- {p['buyers']} buyers arriving at {p['arrival_rate_per_second']}/s over"
        f" {p['arrival_seconds']:.0f} s (Locust spawn rate), Locust stopped at"
        f" {p['run_seconds']} s; one Locust master and {p['locust_workers']} worker processes"
        " (FastHttpUser).",
        f"- {p['events']} events × {p['seats_per_event']} seats; each waiting room admits"
        f" {p['admit_per_second']}/s up to {p['max_active']} active buyers.",
        "- Buyers have accounts before the sale (created in PostgreSQL before the run).",
        f"- Each buyer: {'solve the proof of work → ' if p.get('pow_difficulty') else ''}join"
        f" → poll every {p['poll_seconds']} s (±20 %, Retry-After"
        f" honoured) → hold 1-2 seats → pay → poll the reservation every 0.5 s; gives up after"
        f" {p['patience_seconds']:.0f} s in the queue. Buyers who end without buying leave"
        " the room.",
        f"- Service: {topology(p)}; hold {p['hold_seconds']} s, simulated provider"
        f" {p['payment_latency_ms']} ms with {p['payment_failure_rate']:.0%} failures.",
        pow_line(p, j),
        "- Limits switched off for the run (one source address): "
        + ", ".join(f"`{k}={v}`" for k, v in p["server_env_limits_off"].items())
        + ".",
        "",
        "## Every buyer accounted for",
        f"- requested {a['requested']}, arrived (one journey each) {a['journeys']},"
        f" accounts {a['accounts']}, joined {a['joined']}"
        f" (the waiting rooms counted {a['redis_joins']} joins; {a['unanswered_joins']} joins"
        " got no answer within Locust's 60 s timeout"
        + (", or nginx's 502/504 instead" if p.get("nginx") else "")
        + ")",
    ]
    for fate in ["admitted_and_bought", "admitted_not_bought", "still_waiting", "gave_up"]:
        lines.append(f"- {fate.replace('_', ' ')}: {a['fates'].get(fate, 0)}")
    lines.append(f"- never joined (errors): {a['fates'].get('not_joined', 0)}")
    if a.get("not_joined_reasons"):
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(a["not_joined_reasons"].items()))
        lines.append(f"- never joined, by outcome (HTTP status): {reasons}")
    if a["bought_but_answer_lost"]:
        lost = ", ".join(f"{k} {v}" for k, v in sorted(a["bought_but_answer_lost"].items()))
        lines.append(f"- bought, but the buyer never saw it (the database says paid): {lost}")
    if a["not_bought_reasons"]:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(a["not_bought_reasons"].items()))
        lines.append(f"- not bought, by reason: {reasons}")
    lines += [
        "",
        "| check | result |",
        "|---|---|",
        *(f"| {name} | {'pass' if ok else '**FAIL**'} |" for name, ok in a["checks"].items()),
        "",
        f"Database: {db['seats_sold']} of {db['seats_total']} seats sold in"
        f" {db['paid_reservations']} paid reservations; {db['succeeded_payments']} succeeded"
        f" payments; {db['users']} accounts.",
        "",
        "## Figures",
        f"- peak concurrent buyers (journeys in progress): {j['peak_concurrent_buyers']}",
        f"- admission wait (join → admitted seen): {j['admission_wait_seconds']}",
        f"- payment request → settled seen by the buyer: {j['payment_request_to_settled_seconds']}",
        f"- polls per joined buyer: {j['polls_per_waiting_buyer']}",
        "",
        "| route | requests | failures | median ms | p95 ms | p99 ms | req/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["routes"]:
        lines.append(
            f"| {row['Type']} {row['Name']} | {row['Request Count']} | {row['Failure Count']}"
            f" | {row['Median Response Time']} | {row['95%']} | {row['99%']}"
            f" | {float(row['Requests/s']):.1f} |"
        )
    spread = r.get("redis_cluster_spread") or {}
    if spread:
        lines += [
            "",
            "## How the state spread over the cluster's masters",
            "",
            "| event | its waiting room's key | hash slot | master (port) |",
            "|---|---|---|---|",
            *(
                f"| {e['event_id']} | `{e['key']}` | {e['slot']} | {e['master_port']} |"
                for e in spread["events"]
            ),
            "",
            "Keys per master at the end of the run (waiting rooms, caches, throttles, PoW"
            " single-use marks): "
            + ", ".join(f"{port}: {n}" for port, n in spread["keys_per_master"].items())
            + ".",
        ]
    lines += [
        "",
        "## Load over time (Locust's window figures, every 30 s)",
        "",
        "| t (s) | buyers spawned | req/s | failures/s | p50 ms | p95 ms |",
        "|---|---|---|---|---|---|",
        *(
            f"| {h['t']} | {h['users']} | {h['rps']} | {h['fails_per_s']} | {h['p50_ms']}"
            f" | {h['p95_ms']} |"
            for h in r.get("load_over_time", [])
        ),
    ]
    lines += [
        "",
        "## CPU (from /proc: % of one core over 5 s windows)",
        "",
        "| part | mean while buyers arrived | mean, whole run | peak |",
        "|---|---|---|---|",
    ]
    for role, v in cpu.items():
        if role != "timeline":
            lines.append(
                f"| {role} | {v.get('arrival_mean_pct_of_a_core', '')} | {v['mean_pct_of_a_core']}"
                f" | {v['peak_pct_of_a_core']} |"
            )
    lines += [
        "",
        f"`box` is the whole machine (100 × {r['machine']['cores']} = every core busy), other"
        " sessions' work included; `postgres_all_sessions` counts every PostgreSQL process.",
        "",
        f"Locust's own report: `{p.get('name', 'swarm')}_locust.html`; per-route CSV:"
        f" `{p.get('name', 'swarm')}_stats.csv`.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    # Re-render swarm.md from swarm.json: python -m load.swarm.report docs/results/swarm.json
    import json
    import sys
    from pathlib import Path

    source = Path(sys.argv[1])
    source.with_suffix(".md").write_text(markdown(json.loads(source.read_text())))
