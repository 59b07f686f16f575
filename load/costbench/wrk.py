"""wrk runs with Lua scripts that rotate through a data file (one request's data per line)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = (
    "wrk not found: install the Debian/Ubuntu package (`sudo apt-get install wrk`) "
    "or put a wrk 4.x binary on PATH"
)

# Each thread starts at its own offset and steps by the thread count, so no two requests of a
# run share a line until the file wraps (the caller compares requests with lines).
# `request_for(fields)` is supplied per phase.
_TEMPLATE = """
local data_path = %(data)s
local nthreads = %(threads)d
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  lines = {}
  local f = assert(io.open(data_path, "r"))
  for line in f:lines() do
    lines[#lines + 1] = line
  end
  f:close()
  i = tid
end

local function split(line)
  local out = {}
  for field in string.gmatch(line, "[^\\t]+") do
    out[#out + 1] = field
  end
  return out
end

%(body)s

function request()
  local line = lines[(i %% #lines) + 1]
  i = i + nthreads
  return request_for(split(line))
end

function done(summary, latency, requests)
  io.write(string.format(
    'COSTBENCH {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, ' ..
    '"non2xx": %%d, "socket_errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""

# Request builders: the data line's fields are tab-separated.
GET_PATH = """
function request_for(f)
  return wrk.format("GET", f[1])
end
"""
POST_BEARER = """
function request_for(f)
  return wrk.format("POST", f[1], {["Authorization"] = "Bearer " .. f[2]})
end
"""
POST_BEARER_JSON = """
function request_for(f)
  return wrk.format("POST", f[1], {["Authorization"] = "Bearer " .. f[2],
                                   ["Content-Type"] = "application/json"}, f[3])
end
"""


def paced(body: str, delay_ms: int) -> str:
    """A request builder whose connections each wait `delay_ms` before every request (wrk's
    `delay()`), so the phase runs at most connections x 1000 / delay_ms requests a second."""
    return body + f"\nfunction delay()\n  return {int(delay_ms)}\nend\n"


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(INSTALL_HINT)
    return path


def write_script(path: Path, data: Path, body: str, threads: int) -> None:
    path.write_text(_TEMPLATE % {"data": json.dumps(str(data)), "threads": threads, "body": body})


def run(
    url: str,
    script: Path,
    *,
    threads: int,
    connections: int,
    seconds: float,
) -> WrkResult:
    wrk = require_wrk()
    out = subprocess.run(
        [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    for line in out.stdout.splitlines():
        if line.startswith("COSTBENCH "):
            raw = json.loads(line.removeprefix("COSTBENCH "))
            return WrkResult(
                requests=int(raw["requests"]),
                seconds=int(raw["duration_us"]) / 1e6,
                p50_ms=int(raw["p50_us"]) / 1000,
                p99_ms=int(raw["p99_us"]) / 1000,
                non2xx=int(raw["non2xx"]),
                socket_errors=int(raw["socket_errors"]),
            )
    raise RuntimeError(f"wrk gave no result (rc {out.returncode}): {out.stderr[-2000:]}")
