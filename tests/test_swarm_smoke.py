"""The distributed Locust surge at smoke size: 300 buyers, 2 Locust workers, every buyer
accounted for. Not part of `make test` (it takes about a minute of a busy box):

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


def test_smoke_surge_accounts_for_every_buyer(tmp_path: Path) -> None:
    database = TEST_DATABASE_URL.rsplit("/", 1)[1] + "_swarm"
    env = {
        **os.environ,
        "SWARM_DATABASE_URL": with_database(TEST_DATABASE_URL, database),
        "SWARM_REDIS_URL": TEST_REDIS_URL.rsplit("/", 1)[0] + "/9",
    }
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "load.swarm", "--smoke", "--out", str(out)],
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
    assert (out / "swarm_locust.html").stat().st_size > 0
