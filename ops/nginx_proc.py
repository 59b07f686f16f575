"""Debian's nginx in front of loopback web processes (tests and the distributed surge).

The config is written to a temporary directory: the environment's parts (listen, upstream,
logs, pid, temp paths) around the SAME include docker-compose uses, ops/nginx/flashsale_proxy.conf.
nginx runs in the foreground (`daemon off`), is started with `-p <dir> -c <dir>/nginx.conf` and
stopped by PID. Its access log records, per request, every upstream tried and its status (off
when the caller asks: a 10,000-buyer surge would only fill the disk).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from ops.processes import stop_processes

ROOT = Path(__file__).resolve().parent.parent
SHARED_INCLUDE = ROOT / "ops" / "nginx" / "flashsale_proxy.conf"
START_DEADLINE_SECONDS = 20.0

CONFIG = """\
daemon off;
worker_processes {workers};
worker_rlimit_nofile {nofile};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections {connections};
}}
http {{
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    log_format upstreams '$request_method $request_uri $status "$upstream_addr" "$upstream_status"';
    access_log {access_log};

    upstream flashsale_web {{
{servers}
        keepalive {keepalive};
        # Below uvicorn's --timeout-keep-alive (30 s): nginx drops an idle connection first,
        # never sends a request on one the web process is closing.
        keepalive_timeout 20s;
    }}

    server {{
        listen 127.0.0.1:{port} backlog={backlog};
        include {include};
    }}
}}
"""


def find_nginx() -> str | None:
    """The nginx binary on PATH or Debian's /usr/sbin/nginx; None without one."""
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )


@dataclass
class AccessLine:
    method: str
    uri: str
    status: int
    upstreams: list[str]  # every web process tried, in order
    upstream_statuses: list[str]


@dataclass
class NginxProxy:
    proc: subprocess.Popen[bytes]
    port: int
    dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The master and its worker processes (for CPU figures)."""
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return [self.proc.pid]
        return [self.proc.pid, *(int(p) for p in text.split())]

    def access_log(self) -> list[AccessLine]:
        lines = []
        for raw in (self.dir / "access.log").read_text().splitlines():
            method, uri, status, rest = raw.split(" ", 3)
            addrs, statuses = rest.split('" "')
            lines.append(
                AccessLine(
                    method,
                    uri,
                    int(status),
                    [a.strip() for a in addrs.strip('"').split(",")],
                    [s.strip() for s in statuses.strip('"').split(",")],
                )
            )
        return lines

    def stop(self) -> None:
        stop_processes([self.proc])  # SIGTERM: nginx's fast shutdown


def start_nginx(
    binary: str,
    workdir: Path,
    port: int,
    upstream_ports: list[int],
    *,
    worker_processes: int = 1,
    worker_connections: int = 1024,
    upstream_keepalive: int = 16,
    access_log: bool = True,
) -> NginxProxy:
    """nginx on loopback `port` balancing `upstream_ports`; returns once /nginx-health answers.

    Each proxied request uses two connections (buyer's, upstream's): size worker_connections for
    twice the concurrent clients.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (workdir / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    # A root master runs its workers as `nobody`: they must be able to use the temp paths.
    for path in [workdir, *workdir.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    servers = "\n".join(
        f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=30s;" for p in upstream_ports
    )
    conf = workdir / "nginx.conf"
    conf.write_text(
        CONFIG.format(
            dir=workdir,
            workers=worker_processes,
            connections=worker_connections,
            nofile=worker_connections + 1024,
            keepalive=upstream_keepalive,
            backlog=max(511, worker_connections),
            access_log=f"{workdir}/access.log upstreams" if access_log else "off",
            servers=servers,
            port=port,
            include=SHARED_INCLUDE,
        )
    )
    check = subprocess.run(
        [binary, "-t", "-p", str(workdir), "-c", str(conf)], capture_output=True, timeout=30
    )
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t refused {conf}: {check.stderr.decode()}")
    proc = subprocess.Popen(
        [binary, "-p", str(workdir), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proxy = NginxProxy(proc, port, workdir)
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((workdir / "error.log").read_text())
        try:
            if httpx.get(f"{proxy.url}/nginx-health", timeout=1).status_code == 200:
                return proxy
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proxy.stop()
    raise RuntimeError(f"nginx did not start; see {workdir / 'error.log'}")
