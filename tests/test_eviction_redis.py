"""The live Redis maxmemory experiment, its own redis-server on a free port, then stopped."""

from __future__ import annotations

import csv
import shutil
import socket
from pathlib import Path

import pytest

from load.eviction.redis_direct import main
from load.harness import free_port

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")


def test_redis_lru_and_lfu_evict_and_count(tmp_path: Path) -> None:
    port = free_port()  # a port nobody uses, not the shared 6379
    args = ["--out", str(tmp_path), "--requests", "3000", "--keys", "1500", "--maxmemory-mb", "2"]
    assert main([*args, "--port", str(port)]) == 0
    with (tmp_path / "eviction_redis.csv").open() as f:
        rows = {r["policy"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"allkeys-lru", "allkeys-lfu"}
    for r in rows.values():
        assert int(r["requests"]) == 3000
        assert int(r["hits"]) + int(r["misses"]) == 3000  # every request is one GET
        assert int(r["evicted_keys"]) > 0  # 1,500 x 2 KB does not fit in 2 MB
        assert 0 < int(r["resident_keys"]) < 1500
    assert "allkeys-lfu minus allkeys-lru" in (tmp_path / "eviction_redis.md").read_text()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # the private server is gone
