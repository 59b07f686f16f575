"""A throwaway nginx (Debian's binary) in a temp dir: the shipped gate snippets in front of
trivial upstreams, on loopback ports. Used by tests/test_gate.py and the gate benchmark."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ops.processes import stop_processes

GATE_DIR = Path(__file__).resolve().parents[2] / "ops" / "nginx" / "gate"
STARTUP_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Site:
    port: int
    upstream_port: int
    event_id: int | None  # None: no gate (nginx serves the upstream directly)


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None
    )


def render(tmp: Path, app_port: int, sites: list[Site], workers: int = 1) -> str:
    upstreams = sorted({s.upstream_port for s in sites})
    blocks = [
        f"upstream up_{p} {{ server 127.0.0.1:{p}; keepalive 16; }}\n"
        f"server {{ listen 127.0.0.1:{p}; access_log off;\n"
        f'  location / {{ default_type text/plain; return 200 "upstream {p} $request_uri\\n"; }} }}'
        for p in upstreams
    ]
    for site in sites:
        proxy = (
            f"proxy_pass http://up_{site.upstream_port}; proxy_http_version 1.1;"
            ' proxy_set_header Connection "";'
        )
        if site.event_id is None:
            blocks.append(f"server {{ listen 127.0.0.1:{site.port}; location / {{ {proxy} }} }}")
            continue
        blocks.append(
            f"server {{ listen 127.0.0.1:{site.port};\n"
            f"  set $wr_event {site.event_id};\n"
            f"  include {GATE_DIR}/waitingroom-locations.conf;\n"
            f"  location / {{ include {GATE_DIR}/waitingroom-protect.conf; {proxy} }}\n"
            "}"
        )
    temp = "\n".join(
        f"  {kind}_temp_path {tmp}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # Started as root (CI, containers), workers would drop to `nobody`, who cannot enter the
    # private temp dir holding the cache: keep them as the invoking user.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes {workers};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
{temp}
  proxy_cache_path {tmp}/gate-cache levels=1:2 keys_zone=waitingroom_gate:10m inactive=60s;
  upstream waitingroom {{ server 127.0.0.1:{app_port}; keepalive 32; }}
{chr(10).join(blocks)}
}}
"""


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_nginx(tmp: Path, config: str, ports: list[int]) -> subprocess.Popen[bytes]:
    binary = nginx_binary()
    if binary is None:
        raise FileNotFoundError("nginx is not installed (Debian: apt-get install nginx)")
    conf = tmp / "nginx.conf"
    conf.write_text(config)
    check = subprocess.run(
        [binary, "-t", "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t failed: {check.stderr}")
    proc = subprocess.Popen(
        [binary, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not all(_listening(p) for p in ports):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_nginx(proc)
            log = (tmp / "error.log").read_text() if (tmp / "error.log").exists() else ""
            raise RuntimeError(f"nginx did not start: {log[-2000:]}")
        time.sleep(0.05)
    return proc


def stop_nginx(proc: subprocess.Popen[bytes]) -> None:
    stop_processes([proc])  # SIGTERM: fast shutdown of master and workers
