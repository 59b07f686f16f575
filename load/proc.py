"""Process trees and their CPU time from /proc (Linux): which processes a stack runs, and what
they (or a database's server processes) spent."""

from __future__ import annotations

import os
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces: split after its closing parenthesis.
    return raw[raw.rindex(")") + 2 :].split()


def children(pid: int) -> list[int]:
    """Direct children of `pid`."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is not None and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children(current))
    return out


def cpu_seconds(pids: list[int], *, reaped_children: bool = False) -> float:
    """utime+stime of `pids` (plus their reaped children's, e.g. RQ work horses)."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is None:
            continue
        # Fields after the name: state=0 ppid=1 ... utime=11 stime=12 cutime=13 cstime=14.
        total += int(fields[11]) + int(fields[12])
        if reaped_children:
            total += int(fields[13]) + int(fields[14])
    return total / CLK_TCK


def cmdline(pid: int) -> bytes:
    """The command line, arguments joined by spaces (empty once the process is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return b""


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may wait a while to be reaped)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"
