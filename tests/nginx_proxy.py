"""Debian's nginx in front of loopback web processes, for tests: ops/nginx_proc.py's starter.

The starter lives in ops/ so the load scripts (which must not import tests/) use the same one;
here only what a test needs on top: skip without nginx (fail under CI).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ops.nginx_proc import SHARED_INCLUDE, AccessLine, NginxProxy, find_nginx
from ops.nginx_proc import start_nginx as ops_start_nginx

__all__ = ["SHARED_INCLUDE", "AccessLine", "NginxProxy", "require_nginx", "start_nginx"]


def require_nginx() -> str:
    """The nginx binary; skip without it, but fail in CI (which installs it)."""
    path = find_nginx()
    if path:
        return path
    message = "the nginx tests need nginx (Debian: apt install nginx)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def start_nginx(workdir: Path, port: int, upstream_ports: list[int]) -> NginxProxy:
    return ops_start_nginx(require_nginx(), workdir, port, upstream_ports)
