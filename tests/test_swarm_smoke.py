"""The distributed Locust surge at smoke size: 300 buyers, 2 Locust workers, proof of work on,
every buyer accounted for — on one Redis, and on a Redis Cluster behind nginx. Not part of
`make test` (each takes about a minute of a busy box):

    SWARM_SMOKE=1 python -m pytest -m swarm
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from booking.db import with_database
from tests.conftest import ROOT, TEST_DATABASE_URL, TEST_REDIS_URL

pytestmark = [
    pytest.mark.swarm,
    pytest.mark.skipif(not os.environ.get("SWARM_SMOKE"), reason="set SWARM_SMOKE=1 to run it"),
]


@pytest.mark.parametrize(
    "topology",
    [
        [],
        pytest.param(
            ["--redis-cluster", "--nginx"],  # the swarm's own cluster, on free ports
            marks=[pytest.mark.cluster, pytest.mark.nginx],
            id="cluster-nginx",
        ),
    ],
)
def test_smoke_surge_accounts_for_every_buyer(tmp_path: Path, topology: list[str]) -> None:
    database = TEST_DATABASE_URL.rsplit("/", 1)[1] + "_swarm"
    env = {
        **os.environ,
        "SWARM_DATABASE_URL": with_database(TEST_DATABASE_URL, database),
        "SWARM_REDIS_URL": TEST_REDIS_URL.rsplit("/", 1)[0] + "/9",
    }
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "load.swarm", "--smoke", "--out", str(out), *topology],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stdout.decode()[-3000:] + proc.stderr.decode()[-3000:]
    report = json.loads((out / "swarm.json").read_text())
    accounting = report["accounting"]
    assert accounting["all_checks_pass"], accounting["checks"]
    assert accounting["journeys"] == 300
    # Every buyer who joined solved the event's proof of work (the server refuses a join without).
    assert report["parameters"]["pow_difficulty"] > 0
    assert report["journeys"]["pow_solve_cpu_ms"]["n"] == accounting["joined"] > 0
    if topology:
        spread = report["redis_cluster_spread"]
        assert sum(spread["keys_per_master"].values()) > 0
        assert {e["master_port"] for e in spread["events"]} <= {
            int(p) for p in spread["keys_per_master"]
        }
    assert (out / "swarm_locust.html").stat().st_size > 0
