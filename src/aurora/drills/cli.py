"""`aurora drill rollback|restore|alert`: the drills, run by hand or by the soak."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from aurora.cliopts import finite
from aurora.home import Home

if TYPE_CHECKING:
    from aurora.drills.procedures import DrillReport

app = typer.Typer(no_args_is_help=True)


def _report_drill(report: DrillReport, as_json: bool) -> None:
    if as_json:
        print(json.dumps({**report.to_json(), "ledger_seq": report.ledger_seq}, indent=2))
    else:
        print(f"{report.drill} drill {'PASSED' if report.passed else 'FAILED'} "
              f"({report.drill_id}, ledger entry {report.ledger_seq})")
    if not report.passed:
        raise typer.Exit(1)


@app.command("rollback")
def drill_rollback(as_json: bool = typer.Option(False, "--json")) -> None:
    """The emergency rollback against a scratch copy of the ledger; recorded as evidence."""
    from aurora.drills.procedures import rollback_drill

    _report_drill(rollback_drill(Home.discover(), print if not as_json else lambda _: None),
                  as_json)


@app.command("restore")
def drill_restore(
    backup: Path = typer.Option(None, "--backup", help="Backup to drill with (default: the "
                                                        "newest daily ledger-YYYYMMDD.db.gz)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The seed's data recovery against a scratch copy; recorded as evidence."""
    from aurora.drills.procedures import restore_drill

    _report_drill(restore_drill(Home.discover(), print if not as_json else lambda _: None,
                                backup_file=backup), as_json)


@app.command("alert")
def drill_alert(
    alert: str = typer.Option(..., "--alert", help="TreatyFillRateLow or TreatyRttP95High."),
    timeout: float = typer.Option(None, "--timeout", parser=finite(0, 7 * 86400),
                                  help="Bound on each wait, seconds (default: 40 min, enough "
                                       "for a 15-minute `for:` on the production rules)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Inject the fault behind ALERT into the running stack, see it fire and resolve."""
    from aurora.drills.soak import run_drill
    from aurora.soak.spans import Timing

    timing = Timing(1.0, drill_timeout=timeout)
    passed, summary, detail = run_drill(Home.discover(), alert, timing,
                                        print if not as_json else lambda _: None)
    if as_json:
        print(json.dumps({"passed": passed, "summary": summary, **detail}, indent=2))
    else:
        print(summary)
    if not passed:
        raise typer.Exit(1)
