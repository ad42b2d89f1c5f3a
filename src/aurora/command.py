"""How every Aurora command runs: an ``AuroraError`` is one ``error: ...`` line and its exit
code, never a traceback.

Used by ``aurora`` (:mod:`aurora.cli`) and by the stand-alone scripts that run one command
app (the seed's ``scripts/canary-slo-reporter.py``), so neither imports the other.
"""

from __future__ import annotations

import os
import sys

import typer

from aurora.errors import AuroraError


def run_app(typer_app: typer.Typer, argv: list[str] | None = None, prog: str | None = None) -> None:
    """Run a Typer app; AuroraError becomes one line on stderr and its exit code."""
    try:
        typer_app(args=argv, prog_name=prog)
    except AuroraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as exc:  # a bug, not bad input: still one line unless asked for more
        if os.environ.get("AURORA_DEBUG"):
            raise
        print(f"error: internal: {type(exc).__name__}: {exc} (AURORA_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        raise SystemExit(70) from None
