#!/usr/bin/env python3
"""The seed's SLO reporter: `python3 scripts/canary-slo-reporter.py --prometheus URL --output FILE
[--no-sign | --key KEYID] [--treaty-id ID] [--window 72h]` (same as `aurora slo report`).

The seed runs it with the system's python3, which lacks Aurora's dependencies: the script
re-executes itself with the project's virtual environment (created by `make up`).
"""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"


def _in_venv() -> bool:
    try:
        return Path(sys.prefix).resolve() == VENV.resolve()
    except OSError:
        return False


if not _in_venv():
    python = VENV / "bin" / "python"
    if not os.access(python, os.X_OK):
        print(f"error: no virtual environment at {VENV}; run `make up` (or `make install`) "
              "first", file=sys.stderr)
        raise SystemExit(2)
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])

from aurora.slo.cli import reporter_main  # noqa: E402  (after the re-exec into the venv)

reporter_main()
