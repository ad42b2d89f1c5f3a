"""`aurora soak ...` commands (the drills it schedules: :mod:`aurora.drills.cli`).

Errors are ``AuroraError``s: ``aurora.command.run_app`` prints one ``error: ...`` line and exits
non-zero. ``aurora soak gate`` exits 0 (pass), 1 (fail) or 3 (inconclusive).
"""

from __future__ import annotations

import json
import sys
import threading
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from aurora.cliopts import DAY, RATE, bounded, finite
from aurora.errors import AuroraError
from aurora.home import Home
from aurora.terminal import json_text

if TYPE_CHECKING:
    from aurora.soak.runner import Hooks
    from aurora.soak.verdict import Verdict

app = typer.Typer(no_args_is_help=True)

KEY_HELP = "GnuPG key id that signs the governance report (default: $AURORA_GPG_KEY)."
SOAK_HELP = "Soak id (default: the most recent soak in the ledger)."
DRILLS_HELP = "Comma-separated drills to schedule: fill, latency, restore, rollback, or none."


def _drills(text: str) -> tuple[str, ...]:
    from aurora.soak.schedule import DRILLS

    names = tuple(n.strip() for n in text.split(",") if n.strip() and n.strip() != "none")
    unknown = [n for n in names if n not in DRILLS]
    if unknown:
        raise AuroraError(f"--drills: unknown {', '.join(unknown)} (known: "
                          f"{', '.join(DRILLS)}, none)", exit_code=2)
    return names


def _hooks(title: str) -> tuple[Hooks, AbstractContextManager[Any]]:
    """A live view on a terminal, plain lines otherwise (nohup, CI, pipes)."""
    from rich.console import Console

    from aurora.soak.runner import QuietHooks

    console = Console()
    if console.is_terminal:
        from aurora.soak.display import LiveView

        view = LiveView(console, title)
        return view, view
    hooks = QuietHooks(lambda text: print(text, flush=True))
    return hooks, nullcontext(hooks)


def _print_verdict(verdict: Verdict) -> None:
    from rich.console import Console

    from aurora.soak.verdict import gate_table

    Console().print(gate_table(verdict))


def _unfinished_wall_soak(home: Home) -> str | None:
    from aurora.ledger.storage import home_ledger_exists
    from aurora.soak.evidence import SoakNotFound, load_state, open_readonly

    if not home_ledger_exists(home):
        return None
    try:
        with open_readonly(home) as ledger:
            state = load_state(ledger)
    except SoakNotFound:
        return None
    return state.soak_id if state.plan.mode == "wall" and state.ended is None else None


def default_start(now: datetime) -> date:
    """Today if the 09:00 rituals are still ahead, else tomorrow."""
    return now.date() if now.time() < time(9, 0) else now.date() + timedelta(days=1)


@app.command()
def start(
    days: int = typer.Option(7, "--days", parser=bounded(1, 366), help="How many days."),
    start_date: str = typer.Option(None, "--start-date", metavar="YYYY-MM-DD", parser=DAY,
                                   help="Day 1 (default: today if before 09:00 UTC, else "
                                        "tomorrow)."),
    key: str = typer.Option(None, "--key", metavar="KEYID", help=KEY_HELP),
    soak_id: str = typer.Option(None, "--soak-id", help="Name the soak (default: soak-DATE)."),
    drills: str = typer.Option("fill,latency,restore,rollback", "--drills", help=DRILLS_HELP),
    rpo_backups: bool = typer.Option(False, "--rpo-backups",
                                     help="Back up every 15 min from the orchestrator too (the "
                                          "stack's backup loop normally does)."),
) -> None:
    """Run the 7-day protocol on the wall clock against the running stack (`make up`).

    Resumes the soak when it already exists in the ledger (after a restart): finished tasks
    are not rerun, interrupted ones are rerun, none is skipped.
    """
    from aurora import procs
    from aurora.gpg import chosen_key, secret_key_fingerprint
    from aurora.soak.runner import Runner
    from aurora.soak.schedule import RPO_SECONDS, SoakPlan

    home = Home.discover()
    if procs.running(home, "bridge") is None:
        raise AuroraError("the stack is not running: start it with `make up`", exit_code=2)
    if soak_id is None and start_date is None:
        # a restart without arguments picks up the unfinished wall-clock soak, whatever day
        soak_id = _unfinished_wall_soak(home)
    try:
        first = date.fromisoformat(start_date) if start_date else default_start(
            datetime.now(UTC))
    except ValueError:
        raise AuroraError(f"--start-date {start_date!r} is not YYYY-MM-DD", exit_code=2) from None
    signing_key = chosen_key(key)
    if signing_key:
        secret_key_fingerprint(signing_key)  # fail now, not at hour 72
    plan = SoakPlan(soak_id=soak_id or f"soak-{first:%Y%m%d}", start_date=first, days=days,
                    mode="wall", rpo_every_s=float(RPO_SECONDS) if rpo_backups else None,
                    drills=_drills(drills), key_id=signing_key)
    hooks, view = _hooks(f"Aurora soak {plan.soak_id}")
    stop = threading.Event()
    with view:
        state = Runner(home, plan, hooks, stop, key_id=signing_key).run()
    if state.ended is not None:
        from aurora.soak.verdict import run_gate

        verdict = run_gate(home, state.soak_id, key=signing_key)
        _print_verdict(verdict)
        raise typer.Exit(verdict.result.exit_code)


@app.command()
def rehearse(
    days: int = typer.Option(7, "--days", parser=bounded(1, 366), help="How many soak days."),
    day_seconds: float = typer.Option(None, "--day-seconds", parser=finite(1, 86400),
                                      help="Real seconds per soak day (default 60: 7 days in "
                                           "about 8 minutes)."),
    key: str = typer.Option(None, "--key", metavar="KEYID",
                            help="GnuPG key (default: $AURORA_GPG_KEY, else a throwaway key)."),
    soak_id: str = typer.Option(None, "--soak-id", help="Name it; an existing id resumes it."),
    drills: str = typer.Option("fill,latency,restore,rollback", "--drills", help=DRILLS_HELP),
    traffic_rate: float = typer.Option(None, "--traffic-rate", parser=RATE,
                                      help="Orders/s (default: 3, or less if the tenants' "
                                           "daily budgets would not last the rehearsal)."),
    start_date: str = typer.Option(None, "--start-date", metavar="YYYY-MM-DD", parser=DAY,
                                   help="Soak-clock day 1 (default: today)."),
    home_dir: Path = typer.Option(None, "--home", file_okay=False,
                                  help="Rehearse in an isolated home (created and initialised "
                                       "with its own free ports if missing)."),
) -> None:
    """The same protocol on a compressed clock, with its own time-scaled stack; prints the gate.

    Exit status: the gate's (0 pass, 1 fail, 3 inconclusive).
    """
    from aurora.gpg import chosen_key
    from aurora.soak.isolate import isolated_home
    from aurora.soak.rehearsal import RehearsalOptions, default_day_seconds
    from aurora.soak.rehearsal import rehearse as run

    home = isolated_home(home_dir) if home_dir else Home.discover()
    try:
        first = date.fromisoformat(start_date) if start_date else None
    except ValueError:
        raise AuroraError(f"--start-date {start_date!r} is not YYYY-MM-DD", exit_code=2) from None
    options = RehearsalOptions(days=days, day_seconds=day_seconds or default_day_seconds(home),
                               key=chosen_key(key), drills=_drills(drills),
                               traffic_rate=traffic_rate,
                               soak_id=soak_id, start_date=first)
    hooks, view = _hooks(f"Aurora soak rehearsal ({home.root})")
    with view:
        result = run(home, options, hooks)
    if result.verdict is None:
        print(f"soak {result.state.soak_id} not finished: {len(result.state.pending())} task(s) "
              "left", file=sys.stderr)
        raise typer.Exit(3)
    _print_verdict(result.verdict)
    raise typer.Exit(result.verdict.result.exit_code)


@app.command()
def status(
    soak: str = typer.Option(None, "--soak", help=SOAK_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the state as JSON."),
) -> None:
    """Schedule, what ran, what failed and what is next."""
    from rich.console import Console

    from aurora.soak.display import status_table
    from aurora.soak.evidence import load_state, open_readonly
    from aurora.soak.runner import is_running

    home = Home.discover()
    with open_readonly(home) as ledger:
        state = load_state(ledger, soak)
    running = is_running(home, state.soak_id)
    if as_json:
        pending = state.pending()
        print(json.dumps({
            "soak_id": state.soak_id, "plan": state.plan.to_json(), "running": running,
            "ended": state.ended.isoformat() if state.ended else None,
            "done": [{"key": r.key, "status": r.status, "summary": r.summary,
                      "attempt": r.attempt} for r in state.records()],
            "failed": [r.key for r in state.records() if not r.passed],
            "interrupted": [s.key for s in state.interrupted],
            "next": pending[0].key if pending else None, "pending": len(pending)}, indent=2))
        return
    Console().print(status_table(state, running))


@app.command()
def gate(
    soak: str = typer.Option(None, "--soak", help=SOAK_HELP),
    key: str = typer.Option(None, "--key", metavar="KEYID",
                            help="Sign reports/day7-gate.json (default: $AURORA_GPG_KEY; none: "
                                 "unsigned)."),
    output: Path = typer.Option(None, "--output", "-o", help="Default: reports/day7-gate.json."),
    no_prometheus: bool = typer.Option(False, "--no-prometheus", hidden=True,
                                       help="Kept for old scripts: the gate never queries "
                                            "Prometheus (SLOs come from the recorded checks)."),
    as_json: bool = typer.Option(False, "--json", help="Print the verdict as JSON."),
) -> None:
    """Evaluate the Day-7 checklist from evidence: exit 0 pass, 1 fail, 3 inconclusive."""
    from aurora.gpg import chosen_key
    from aurora.soak.verdict import run_gate

    del no_prometheus  # the verdict is the recorded evidence's, with or without Prometheus
    verdict = run_gate(Home.discover(), soak, key=chosen_key(key), output=output)
    if as_json:
        print(json_text(verdict.document, indent=2))
    else:
        _print_verdict(verdict)
    raise typer.Exit(verdict.result.exit_code)
