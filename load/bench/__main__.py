"""Benchmarks measured side by side with a bare baseline in one run:

    .venv/bin/python -m load.bench holds [--clients 32] [--seconds 2.5] [--rounds 3]
    .venv/bin/python -m load.bench waitingroom [--rounds 3] [--requests 1000]

(the same as `python -m load.bench.holds` / `python -m load.bench.waitingroom`).
"""

from __future__ import annotations

import sys

from load.bench import holds, waitingroom

BENCHES = {"holds": holds.main, "waitingroom": waitingroom.main}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in BENCHES:
        raise SystemExit(__doc__)
    name = sys.argv.pop(1)
    sys.argv[0] = f"python -m load.bench {name}"
    BENCHES[name]()


if __name__ == "__main__":
    main()
