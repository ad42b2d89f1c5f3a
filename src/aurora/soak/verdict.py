"""``reports/day7-gate.json``: the gate's verdict as a signed document, and its table.

The document is canonical JSON (RFC 8785), like every report Aurora signs; with a key it
gets ``.asc`` and ``.sha256`` exactly as the governance report does (``aurora.gpg.publish``):
a run without a key removes the previous run's ``.asc``, so the verdict is visibly unsigned.
``day7-gate.pdf`` beside it is the same document for the board (``aurora.docket``), signed
and checksummed the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from aurora import gpg
from aurora.canonical import canonical_json
from aurora.docket.files import write_pdf
from aurora.docket.render import gate_html
from aurora.home import Home
from aurora.soak.collect import collect
from aurora.soak.gate import MARKS, GateResult, evaluate
from aurora.soak.state import SoakState
from aurora.wire import format_rfc3339, utc_now

GATE_KIND = "aurora-day7-gate"
GATE_FILE = "day7-gate.json"


@dataclass
class Verdict:
    state: SoakState
    result: GateResult
    document: dict[str, Any]
    path: Path
    signed: gpg.Published | None  # None: unsigned (and no stale .asc left beside it)
    sign_note: str
    pdf: Path | None = None


def document(state: SoakState, result: GateResult) -> dict[str, Any]:
    return {
        "report": GATE_KIND, "version": 1, "soak_id": state.soak_id,
        "plan": state.plan.to_json(), "generated_at": format_rfc3339(utc_now()),
        "soak": {"real_start": format_rfc3339(state.real_start),
                 "real_end": format_rfc3339(state.ended) if state.ended else None,
                 "tasks_done": len(state.finished), "tasks_pending": len(state.pending())},
        "outcome": result.outcome, "exit_code": result.exit_code,
        "items": [item.to_json() for item in result.items],
        "next": ("transition to the 10 % canary" if result.outcome == "pass" else
                 "fix the failed items; the canary waits" if result.outcome == "fail" else
                 "a person must decide: evidence is missing or a source was unreachable"),
    }


def run_gate(home: Home, soak_id: str | None = None, *, key: str | None = None,
             gnupghome: Path | None = None, output: Path | None = None) -> Verdict:
    """Collect, judge, write ``reports/day7-gate.json`` and sign it when a key is given."""
    state, facts = collect(home, soak_id)
    result = evaluate(facts)
    doc = document(state, result)
    path = output or home.reports_dir / GATE_FILE
    published = gpg.publish(path, canonical_json(doc), key, gnupghome=gnupghome)
    # the same document for the board, published the same way
    pdf = write_pdf(doc, path, gate_html, key, gnupghome=gnupghome)
    if published.signature is None:
        return Verdict(state, result, doc, path, None,
                       f"unsigned: no key (--key or $AURORA_GPG_KEY); {pdf.path.name} beside it",
                       pdf.path)
    assert pdf.signature is not None
    return Verdict(state, result, doc, path, published, f"signed with {key}: "
                   f"{published.signature.name}, {published.checksum.name}, "
                   f"{pdf.signature.name}, {pdf.checksum.name}", pdf.path)


def gate_table(verdict: Verdict) -> Table:
    result = verdict.result
    table = Table(title=f"Day-7 gate for {verdict.state.soak_id}: {MARKS[result.outcome]} "
                        f"{result.outcome.upper()} (exit {result.exit_code})",
                  title_justify="left", show_lines=True)
    table.add_column("", width=2)
    table.add_column("checklist item")
    table.add_column("why", overflow="fold")
    for item in result.items:
        table.add_row(MARKS[item.outcome], item.title, item.reason)
    table.caption = f"{verdict.path} ({verdict.sign_note})"
    return table
