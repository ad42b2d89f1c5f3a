"""Run every benchmark in turn (`make bench`); each prints its own figures.

    .venv/bin/python benchmarks/run_all.py

The figures recorded in docs/PERFORMANCE.md come from these commands on the
project's 2-core reference machine, run with nothing else on it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = [
    ["ledger_bench.py"],
    ["policy_bench.py"],
    ["routing_bench.py"],
    ["bridge_bench.py", "--seconds", "10", "--connections", "1,16,64"],
    ["bridge_bench.py", "--overhead", "--rate", "200", "--seconds", "30"],
    ["haproxy_bench.py", "--rate", "20", "--seconds", "30"],
    # PostgreSQL mode (each starts its own throwaway durable cluster)
    ["policy_pg_bench.py"],
    ["ledger_pg_bench.py"],
    ["bridge_bench.py", "--postgres", "--replicas", "1", "--connections", "64", "--seconds", "10"],
    ["bridge_bench.py", "--postgres", "--replicas", "2", "--connections", "64", "--seconds", "10"],
]


def main() -> None:
    failed = 0
    for args in RUNS:
        print(f"\n== {' '.join(args)}", flush=True)
        failed += subprocess.run([sys.executable, str(HERE / args[0]), *args[1:]]).returncode != 0
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
