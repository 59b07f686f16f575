"""Several uvicorn worker processes behind one port: with PROMETHEUS_MULTIPROC_DIR set, every
process's /metrics answers the sum over all of them, whichever process serves the scrape."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, free_port, service_env, stop, wait_ready

REQUESTS = 40


@pytest.fixture
def two_process_server(
    database_url: str, redis_url: str, tmp_path: Path
) -> Iterator[tuple[str, Path]]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "booking.asgi:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=service_env(
            PORT=str(port), PROMETHEUS_MULTIPROC_DIR=str(tmp_path), ADMITTER_ENABLED="0"
        ),
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        yield f"http://127.0.0.1:{port}", tmp_path
    finally:
        stop(proc)


def healthz_count(text: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "http_requests_total" and sample.labels.get("route") == "/healthz":
                total += sample.value
    return total


def test_metrics_aggregate_across_uvicorn_workers(two_process_server: tuple[str, Path]) -> None:
    base, folder = two_process_server
    for _ in range(REQUESTS):
        # A new connection each time, so the kernel spreads them over both processes.
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    pids = {p.stem.rsplit("_", 1)[-1] for p in folder.glob("counter_*.db")}
    assert len(pids) >= 2, f"expected files from two processes, found {sorted(folder.iterdir())}"
    for _ in range(6):
        scrape = httpx.get(f"{base}/metrics", timeout=5)
        assert scrape.status_code == 200
        assert healthz_count(scrape.text) == REQUESTS
