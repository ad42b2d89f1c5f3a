"""`aurora slo report`, the seed's `scripts/canary-slo-reporter.py`, and `aurora health-check`."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

import typer

from aurora.cliopts import DURATION, TIME
from aurora.command import run_app
from aurora.errors import AuroraError

app = typer.Typer(no_args_is_help=True)

ReportFormat = Literal["json", "html", "pdf"]

# The seed's script runs the report command alone: an app with a single command.
reporter_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def report(
    prometheus: str | None = typer.Option(
        None, "--prometheus", metavar="URL",
        help="Prometheus base URL (default: from config/stack.json)"),
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE",
        help="Report file (default: reports/slo-report-TIME.json)")] = None,
    no_sign: bool = typer.Option(False, "--no-sign", help="Do not sign (the default)."),
    key: str | None = typer.Option(
        None, "--key", metavar="KEYID",
        help="Sign with this GnuPG secret key: FILE.asc and FILE.sha256."),
    treaty_id: str | None = typer.Option(
        None, "--treaty-id", metavar="ID", help="Treaty (default: the treaty template's)"),
    window: str = typer.Option("72h", "--window", parser=DURATION,
                               help="How far back: 24h, 72h, 7d, ..."),
    at: str | None = typer.Option(
        None, "--at", metavar="RFC3339", parser=TIME,
        help="Evaluate at this time instead of now (re-creates a report)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    fmt: ReportFormat = typer.Option(
        "json", "--format", help="json (the default) writes FILE only; pdf or html also write "
        "the report for people beside it (FILE.pdf / FILE.html), rendered from that JSON and "
        "signed like it."),
    check: bool = typer.Option(False, "--check", help="Exit 1 when the report is not compliant."),
) -> None:
    """SLO compliance report over a window, from Prometheus (optionally GPG-signed).

    Exit 0 when the report was written, even if not compliant (unless --check).
    Exit 2 when Prometheus is unreachable, the window is bad or the key is unknown.
    """
    from rich.console import Console

    from aurora import gpg
    from aurora.config import load_stack
    from aurora.docket.evidence import gather
    from aurora.docket.files import write_rendering
    from aurora.docket.render import slo_report_html
    from aurora.home import Home
    from aurora.slo.prometheus import PrometheusClient
    from aurora.slo.report import build_report, evaluation_time, summary_table, write_report
    from aurora.treaty import load_treaty

    if no_sign and key:
        raise AuroraError("--no-sign and --key exclude each other", exit_code=2)
    home = Home.discover()
    url = prometheus or load_stack(home).prometheus_url
    when = evaluation_time(at)
    if output is None:
        output = home.reports_dir / f"slo-report-{when.strftime('%Y%m%dT%H%M%SZ')}.json"
    elif output.suffix in (".pdf", ".html"):
        output = output.with_suffix(".json")  # the JSON is the report; the PDF its rendering
    if key:
        gpg.secret_key_fingerprint(key)  # fail before querying and writing
    treaty = treaty_id or load_treaty(home).treaty_id
    with PrometheusClient(url) as client:
        document = build_report(client, treaty_id=treaty, window=window, at=when,
                                prometheus_url=url)
    document["evidence"] = gather(home, since=when - timedelta(seconds=document["window_seconds"]),
                                  until=when)
    # the JSON and its rendering each published with .sha256 and, given a key, .asc
    published = [write_report(document, output, key)]
    rendered = write_rendering(document, output, fmt, slo_report_html, key)
    if rendered is not None:
        published.append(rendered)
    if as_json:
        typer.echo(json.dumps(document, indent=2))
    else:
        console = Console()
        console.print(summary_table(document))
        console.print(f"wrote {output}" + (f" and {rendered.path}" if rendered else ""))
        for done in published:
            if done.signature:
                console.print(f"signed {done.signature} (key {key}), sha256 in {done.checksum}")
    if check and not document["compliant"]:
        raise typer.Exit(1)


app.command("report")(report)
reporter_app.command()(report)


@app.command("render")
def render_command(
    file: Annotated[Path, typer.Argument(help="A report JSON (aurora slo report, "
                                         "canary-72h.json, daily-*.json) or day7-gate.json.")],
    fmt: ReportFormat = typer.Option("pdf", "--format", help="pdf or html."),
) -> None:
    """Render a report JSON for people, beside it (FILE.pdf / FILE.html), offline.

    The same document always gives the same PDF: rendering a signed JSON again and comparing
    it with the signed PDF (cmp) shows the PDF prints only what was signed.
    """
    from aurora.docket.files import write_rendering
    from aurora.docket.render import gate_html, slo_report_html

    if fmt == "json":
        raise AuroraError("--format json: the file is already JSON; use pdf or html",
                          exit_code=2)
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AuroraError(f"{file}: cannot read a JSON report: {exc}", exit_code=2) from None
    kinds = {"aurora-slo-report": slo_report_html, "aurora-day7-gate": gate_html}
    html_of = kinds.get(str(document.get("report")) if isinstance(document, dict) else "")
    if html_of is None or document.get("version", 0) < (2 if html_of is slo_report_html else 1):
        raise AuroraError(f"{file} is not a report this version renders (want "
                          "aurora-slo-report version 2 or aurora-day7-gate)", exit_code=2)
    out = write_rendering(document, file, fmt, html_of)
    assert out is not None  # fmt is pdf or html
    typer.echo(f"wrote {out.path}")


def reporter_main(argv: list[str] | None = None) -> None:
    """Entry point of scripts/canary-slo-reporter.py."""
    run_app(reporter_app, argv, prog="canary-slo-reporter.py")


def health_check(
    as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON."),
) -> None:
    """Check the whole installation: bridge, metrics, Prometheus, ledger, backups, disk, keys.

    One line per check; exit 0 only when every check passes, 1 otherwise.
    """
    from rich.console import Console

    from aurora.home import Home
    from aurora.slo.health import health_table, run_checks

    results = run_checks(Home.discover())
    if as_json:
        typer.echo(json.dumps({"ok": all(r.ok for r in results),
                               "checks": [r.to_json() for r in results]}, indent=2))
    else:
        Console().print(health_table(results))
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    root.command("health-check")(health_check)
