"""How every Aurora command runs: an ``AuroraError`` is one ``error: ...`` line and its exit
code, never a traceback.

Used by ``aurora`` (:mod:`aurora.cli`) and by the stand-alone scripts that run one command
app (the seed's ``scripts/canary-slo-reporter.py``), so neither imports the other.
"""

from __future__ import annotations

import os
import sys

import typer
from typer._click import exceptions as click_exceptions

from aurora.errors import AuroraError


def run_app(typer_app: typer.Typer, argv: list[str] | None = None, prog: str | None = None) -> None:
    """Run a Typer app; AuroraError becomes one line on stderr and its exit code."""
    try:
        # not standalone: a usage error reaches us and becomes one line like any other
        result = typer_app(args=argv, prog_name=prog, standalone_mode=False)
    except typer.BadParameter as exc:
        # typer validates options with pydantic, which prefixes our parsers' messages
        message = exc.message.replace("Value error, ", "")
        opts = exc.param.opts if exc.param is not None else []
        print(f"error: {opts[0]}: {message}" if opts else f"error: {message}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except click_exceptions.NoArgsIsHelpError as exc:
        print(exc.format_message(), file=sys.stderr)  # the help text itself
        raise SystemExit(exc.exit_code) from None
    except click_exceptions.UsageError as exc:
        print(f"error: {exc.format_message()} (see --help)", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except click_exceptions.ClickException as exc:
        print(f"error: {exc.format_message()}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        print("aborted", file=sys.stderr)
        raise SystemExit(1) from None
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
    # as in standalone mode: always SystemExit, with typer.Exit's code (0 on success)
    raise SystemExit(result if isinstance(result, int) else 0)
