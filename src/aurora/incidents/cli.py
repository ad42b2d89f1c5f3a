"""`aurora incident ...`: list, show, ack, resolve, report, serve."""

from __future__ import annotations

import os
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

from aurora.cliopts import PORT, SINCE, finite
from aurora.errors import AuroraError
from aurora.terminal import json_text, shown, shown_markup

if TYPE_CHECKING:
    from aurora.incidents.model import Incident
    from aurora.incidents.report import Report

app = typer.Typer(no_args_is_help=True)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
_RESERVED = ("alertmanager",)  # the ``by`` of resolutions that Alertmanager sent


def _check_name(name: str) -> str:
    if not _NAME.match(name) or name.lower() in _RESERVED:
        raise AuroraError(f"--by {name!r}: use a person's handle (letters, digits, ._@+-; "
                          "not 'alertmanager')")
    return name


def _default_operator() -> str:
    return os.environ.get("USER") or os.environ.get("LOGNAME") or "operator"


def _print_json(value: Any) -> None:
    print(json_text(value, indent=2))


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment is not None else "-"


def _secs(value: float | None) -> str:
    from aurora.durations import format_duration

    return "-" if value is None else format_duration(value)


def _sla_cell(incident: Incident, now: datetime) -> str:
    outcome = incident.outcome(now)
    if outcome == "pending":
        return f"due in {_secs((incident.deadline - now).total_seconds())}"
    return {"met": "met", "auto_resolved": "met (auto-resolved)",
            "breached": "BREACHED"}[outcome]


@app.command("list")
def list_(
    open_only: bool = typer.Option(False, "--open", help="Only incidents not yet resolved."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table."),
) -> None:
    """Incidents, oldest first."""
    from rich.console import Console
    from rich.table import Table

    from aurora.incidents.service import open_store

    with open_store() as store:
        found = store.incidents(open_only=open_only)
        now = store.clock()
    if as_json:
        _print_json({"incidents": [i.to_json(now) for i in found]})
        return
    table = Table("id", "sev", "status", "alert", "treaty", "opened", "response", "SLA",
                  box=None, header_style="bold")
    for i in found:
        # labels and names come from Alertmanager, i.e. from whoever can post a webhook
        table.add_row(*(shown_markup(cell) for cell in (
            i.id, i.sev, i.status + (" (drill)" if i.drill else ""), i.alertname,
            i.treaty_id or "-", _when(i.opened_at), _secs(i.response_seconds),
            _sla_cell(i, now))))
    console = Console(width=160)
    console.print(table if found else "no incidents" + (" open" if open_only else ""))


@app.command()
def show(
    incident_id: str = typer.Argument(..., metavar="ID"),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of text."),
) -> None:
    """One incident with its timeline (each step is a ledger entry)."""
    from aurora.incidents.service import open_store

    with open_store() as store:
        incident = store.get(incident_id)
        timeline = store.timeline(incident_id)
        now = store.clock()
    if as_json:
        _print_json({**incident.to_json(now), "events": [
            {"ledger_seq": seq, **event.to_data()} for seq, event in timeline]})
        return
    rows = [
        ("incident", incident.id), ("severity", incident.sev + f" (rule {incident.rule})"),
        ("status", incident.status + (f" (drill {incident.drill})" if incident.drill else "")),
        ("alert", incident.alertname), ("summary", incident.summary or "-"),
        ("runbook", incident.runbook_url or "-"),
        ("treaty", incident.treaty_id or "-"),
        ("labels", ", ".join(f"{k}={v}" for k, v in sorted(incident.labels.items()))),
        ("alert since", _when(incident.starts_at)), ("opened", _when(incident.opened_at)),
        ("respond by", _when(incident.deadline)), ("SLA", _sla_cell(incident, now)),
        ("acknowledged", f"{_when(incident.acknowledged_at)} by {incident.acknowledged_by}"
         if incident.acknowledged_at else "-"),
        ("response time", _secs(incident.response_seconds)),
        ("resolved", f"{_when(incident.resolved_at)} by {incident.resolved_by}"
         if incident.resolved_at else "-"),
    ]
    # everything below came from a webhook or an operator: escaped, so that a label cannot
    # move the cursor, end the line or reverse the text
    for name, value in rows:
        print(f"{name + ':':<15}{shown(value)}")
    print(f"alerts:        {len(incident.alerts)} in the group, {len(incident.firing)} firing")
    for member in incident.alerts:
        # what tells the group's alerts apart: the labels that differ from the first one's
        own = shown(", ".join(f"{k}={v}" for k, v in sorted(member.labels.items())
                              if incident.labels.get(k) != v))
        state = "firing" if member.firing else "resolved"
        print(f"  {shown(member.fingerprint[:16]):<16}  {state:<8}  since {_when(member.starts_at)}"
              f"  {own}".rstrip())
    print("timeline:")
    for seq, event in timeline:
        extra = shown(" ".join(f"{k}={v}" for k, v in event.data.items()
                               if k in ("by", "note", "reason", "source", "drill")))
        print(f"  {_when(event.at)}  {event.kind:<12} ledger #{seq}  {extra}".rstrip())


@app.command()
def ack(
    incident_id: str = typer.Argument(..., metavar="ID"),
    by: str = typer.Option(..., "--by", help="Who responds (your handle)."),
    note: str | None = typer.Option(None, "--note", help="What you found or did."),
) -> None:
    """Acknowledge an incident: its response time is the first acknowledgement."""
    from aurora.incidents.service import open_store

    with open_store(write=True) as store:
        incident = store.acknowledge(incident_id, by=_check_name(by), note=note)
    late = " (after its SLA deadline: breached)" if incident.escalated_at else ""
    print(f"{incident.id} acknowledged by {incident.acknowledged_by}; response time "
          f"{_secs(incident.response_seconds)}{late}")


@app.command()
def resolve(
    incident_id: str = typer.Argument(..., metavar="ID"),
    note: str = typer.Option(..., "--note", help="What fixed it (kept in the ledger)."),
    by: str | None = typer.Option(None, "--by", help="Who resolves (default: $USER)."),
) -> None:
    """Resolve an incident by hand (Alertmanager resolves it when its alert clears)."""
    from aurora.incidents.service import open_store

    if not note.strip():
        raise AuroraError("--note must say what fixed it")
    with open_store(write=True) as store:
        incident = store.resolve(incident_id, by=_check_name(by or _default_operator()),
                                 note=note)
    print(f"{incident.id} resolved by {incident.resolved_by}")


def _report_table(report: Report) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("sev", "opened", "open", "acked", "resolved", "met", "auto-resolved",
                  "breached", "pending", "p50", "p90", "p95", "p99", "max", box=None,
                  header_style="bold")
    for sev, s in report.by_sev.items():
        r = s.response
        table.add_row(sev, *(str(n) for n in (s.opened, s.open, s.acknowledged, s.resolved,
                                              s.met, s.auto_resolved, s.breached, s.pending)),
                      *(_secs(r.percentiles[p]) for p in (50, 90, 95, 99)), _secs(r.max))
    console = Console(width=160)
    since = _when(report.since) if report.since else "the beginning"
    console.print(f"incidents opened from {since} to {_when(report.until)}")
    console.print(table)
    r = report.response
    console.print(f"response time (all SEVs): p50 {_secs(r.percentiles[50])}, "
                  f"p95 {_secs(r.percentiles[95])}, max {_secs(r.max)} over {r.count}")
    console.print(f"SEV1/SEV2 incidents: {report.major}; drills (not counted): {report.drills}")
    console.print(report.sla_line())


@app.command()
def report(
    since: str = typer.Option("7d", "--since", parser=SINCE,
                              help="A duration back from now (7d, 24h) "
                              "or an RFC 3339 time."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table."),
) -> None:
    """Counts per SEV, response-time percentiles and alert response within SLA."""
    from aurora.durations import parse_since
    from aurora.incidents.service import open_store

    with open_store() as store:
        try:
            start = parse_since(since, store.clock())
        except ValueError as exc:
            raise AuroraError(f"--since: {exc}") from None
        result = store.report(since=start)
    if as_json:
        _print_json(result.to_json())
    else:
        _report_table(result)


@app.command()
def serve(
    port: int | None = typer.Option(None, "--port", parser=PORT, help="Default: incidents_port in "
                                    "config/stack.json."),
    check_every: float = typer.Option(15.0, "--check-every", parser=finite(0, 86400),
                                      help="Seconds between SLA breach checks."),
) -> None:
    """Run the Alertmanager webhook receiver (POST /alerts) in the foreground."""
    from aurora.incidents.server import serve as run

    run(port=port, check_every=check_every)
