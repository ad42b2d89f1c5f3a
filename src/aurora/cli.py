"""The ``aurora`` command: a thin layer that only assembles the areas' commands.

Each command lives in the package that owns its logic (``aurora.<area>.cli``, or
``aurora.stack_cli`` for the stack's own ``init``/``up``/``down``/``status``/``smoke``) as a
Typer app or a ``register(app)`` function; heavy imports stay inside the command functions
so that ``aurora --help`` is quick. How a command fails (one ``error:`` line) is
:func:`aurora.command.run_app`; no area imports this module.
"""

from __future__ import annotations

import typer

from aurora.command import run_app

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
    from aurora.drills.cli import app as drill_app
    from aurora.incidents.cli import app as incident_app
    from aurora.ledger.cli import app as ledger_app
    from aurora.ledger.cli import register as register_ledger
    from aurora.providers.cli import chaos_app
    from aurora.providers.cli import register as register_providers
    from aurora.slo.cli import app as slo_app
    from aurora.slo.cli import register as register_observatory
    from aurora.soak.cli import app as soak_app
    from aurora.traffic.cli import register as register_traffic

    stack_cli.register(app)
    register_bridge(app)
    register_traffic(app)
    register_providers(app)
    register_observatory(app)
    register_ledger(app)
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


def main() -> None:
    run_app(app)
