"""A real Prometheus server scrapes the live test server with the shipped recording rules, and
promtool accepts the shipped configuration, rules and the alert unit tests.

The `prometheus` Debian package (installed by .ci/run) provides both binaries; the tests skip
only where it is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import ROOT, free_port

PROM_DIR = ROOT / "ops" / "prometheus"
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
DEADLINE_SECONDS = 40

needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus not installed (.ci/run installs the Debian package)"
)
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (.ci/run installs the Debian package)"
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=30, cwd=PROM_DIR
    )


@needs_promtool
@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.local.yml"])
def test_promtool_accepts_config(config: str) -> None:
    result = promtool("check", "config", config)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_accepts_rules() -> None:
    result = promtool("check", "rules", "recording_rules.yml", "alert_rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_alert_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", "tests/alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def prometheus(live_server: str, tmp_path: Path) -> Iterator[str]:
    assert PROMETHEUS is not None
    target = live_server.removeprefix("http://")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
        "rule_files": [str(PROM_DIR / "recording_rules.yml"), str(PROM_DIR / "alert_rules.yml")],
        "scrape_configs": [{"job_name": "web", "static_configs": [{"targets": [target]}]}],
    }
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config_file}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(base, proc), "prometheus ready")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ready(base: str, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        raise RuntimeError(f"prometheus exited with {proc.returncode}: {stderr[-2000:]}")
    try:
        return httpx.get(f"{base}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(check: Any, what: str) -> Any:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def query(base: str, promql: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5).json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


@needs_prometheus
def test_prometheus_scrapes_app_and_evaluates_recording_rules(
    prometheus: str, live_server: str
) -> None:
    up = wait_until(lambda: query(prometheus, 'up{job="web"} == 1'), "the app target up")
    assert up[0]["metric"]["instance"] == live_server.removeprefix("http://")

    def traffic_and_rate() -> list[dict[str, Any]]:
        httpx.get(f"{live_server}/healthz", timeout=5)
        return query(prometheus, 'job:http_requests:rate1m{job="web"} > 0')

    rate = wait_until(traffic_and_rate, "the recorded request rate")
    assert float(rate[0]["value"][1]) > 0
    # A histogram-based rule too: p99 latency by route for the probe route.
    p99 = wait_until(
        lambda: query(
            prometheus, 'job_route:http_request_duration_seconds:p99_5m{route="/healthz"}'
        ),
        "the recorded p99",
    )
    assert 0 < float(p99[0]["value"][1]) < 10
    rules = httpx.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
    unhealthy = [
        (g["name"], r["name"], r.get("lastError"))
        for g in rules
        for r in g["rules"]
        if r.get("health") == "err"
    ]
    assert not unhealthy, unhealthy
