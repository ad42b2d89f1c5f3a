"""The ``aurora`` command.

Each area keeps its commands in its own module (``aurora.<area>.cli`` or
``aurora.<area>_cli``) as a Typer app registered here; heavy imports stay
inside the command functions so that ``aurora --help`` is quick.
"""

from __future__ import annotations

import os
import sys

import typer
from typer._click import exceptions as click_exceptions

from aurora.errors import AuroraError

app = typer.Typer(
    name="aurora",
    help="Treaty-governed compute brokering: bridge, providers, ledger, observatory, soak.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from aurora import stack_cli
    from aurora.bridge.cli import register as register_bridge
    from aurora.canary.cli import app as canary_app
    from aurora.db.cli import app as db_app
    from aurora.incidents.cli import app as incident_app
    from aurora.ledger.cli import app as ledger_app
    from aurora.providers.cli import chaos_app
    from aurora.providers.cli import register as register_providers
    from aurora.slo.cli import app as slo_app
    from aurora.slo.cli import register as register_observatory
    from aurora.soak.cli import app as soak_app
    from aurora.soak.cli import drill_app
    from aurora.soak.cli import register as register_soak

    stack_cli.register(app)
    register_bridge(app)
    register_providers(app)
    register_observatory(app)
    register_soak(app)
    app.add_typer(ledger_app, name="ledger", help="The Remembrancer: append-only Merkle audit log.")
    app.add_typer(db_app, name="db", help="PostgreSQL for the replicated mode: up, down, init.")
    app.add_typer(chaos_app, name="chaos", help="Inject provider faults into the running network.")
    app.add_typer(slo_app, name="slo", help="SLO reports from Prometheus.")
    app.add_typer(incident_app, name="incident", help="Incidents opened by alerts.")
    app.add_typer(soak_app, name="soak", help="The 7-day soak protocol and its Day-7 gate.")
    app.add_typer(drill_app, name="drill", help="Emergency-procedure and alert drills.")
    app.add_typer(canary_app, name="canary",
                  help="Canary rollout (in progress): sample sizes and time to a verdict.")


_register()


def run_app(typer_app: typer.Typer, argv: list[str] | None = None, prog: str | None = None) -> None:
    """Run a Typer app; AuroraError becomes one line on stderr and its exit code."""
    try:
        # not standalone: a usage error reaches us and becomes one line like any other
        result = typer_app(args=argv, prog_name=prog, standalone_mode=False)
    except typer.BadParameter as exc:
        # typer validates options with pydantic, which prefixes our parsers' messages
        print(f"error: {exc.format_message().replace('Value error, ', '')}", file=sys.stderr)
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


def main() -> None:
    run_app(app)
