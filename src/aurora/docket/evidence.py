"""What the home holds for a report's window, as JSON for the signed report.

The SLO report (``aurora.slo.report``) is Prometheus' view; the board also wants the
record: the ledger's head and signed checkpoint, the incidents with their SEV and response
against the SLA, the backups and drills and how they were verified. ``gather`` reads them
(read-only) into one ``evidence`` object that goes into the report *before* it is signed,
so the PDF prints exactly what the signature covers. A source that cannot be read is
``available: false`` with the reason, never left out silently.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from aurora.digests import sha256_file
from aurora.errors import AuroraError
from aurora.home import Home
from aurora.wire import format_rfc3339

MAX_LISTED = 40  # rows per table; the counts cover all of them


def _checkpoint(note: str) -> dict[str, Any]:
    head = note.splitlines()
    root_b64 = head[2] if len(head) > 2 else ""
    try:
        root_hex = base64.b64decode(root_b64, validate=True).hex()
    except ValueError:
        root_hex = None
    return {"origin": head[0] if head else None,
            "size": int(head[1]) if len(head) > 1 and head[1].isdigit() else None,
            "root_b64": root_b64, "root": root_hex, "note": note}


def ledger_evidence(home: Home, checkpoint_note: str | None) -> dict[str, Any]:
    """Tree size, root and the signed checkpoint (given, else the newest stored one)."""
    from aurora.ledger import Ledger

    try:
        with Ledger.open(home, readonly=True) as ledger:
            head = ledger.tree_head()
            note = checkpoint_note or ledger.latest_checkpoint()
    except (AuroraError, OSError) as exc:
        return {"available": False, "detail": f"ledger {home.ledger_db}: {exc}"}
    return {"available": True, "detail": f"{home.ledger_db.name}, read-only",
            "tree_size": head.size, "root": head.root_hex,
            "checkpoint": _checkpoint(note) if note else None,
            "vkey": str(home.ledger_vkey.relative_to(home.root))
            if home.ledger_vkey.is_relative_to(home.root) else str(home.ledger_vkey)}


def incident_evidence(home: Home, since: datetime, until: datetime) -> dict[str, Any]:
    """Every incident opened in the window: SEV, times, response against its SLA."""
    from aurora.incidents.service import IncidentStore, incident_report

    try:
        summary = incident_report(home, since=since, until=until)
        with IncidentStore.open(home) as store:
            incidents = store.incidents(since=since, until=until)
    except (AuroraError, OSError) as exc:
        return {"available": False, "detail": str(exc)}

    def t(value: datetime | None) -> str | None:
        return None if value is None else format_rfc3339(value)

    listed = [{"id": i.id, "sev": i.sev, "alertname": i.alertname, "status": i.status,
               "opened_at": t(i.opened_at), "deadline": t(i.deadline),
               "acknowledged_at": t(i.acknowledged_at), "resolved_at": t(i.resolved_at),
               "sla_seconds": round((i.deadline - i.opened_at).total_seconds(), 3),
               "response_seconds": i.response_seconds, "outcome": i.outcome(until),
               "drill": i.drill} for i in incidents]
    return {"available": True, "detail": summary.sla_line(), "total": len(listed),
            "summary": summary.to_json(), "listed": listed[-MAX_LISTED:]}


def _rows(home: Home, kind: str, since: datetime, until: datetime
          ) -> list[tuple[int, str, dict[str, Any]]]:
    from aurora.ledger import Ledger

    until_ts = format_rfc3339(until)
    with Ledger.open(home, readonly=True) as ledger:
        return [(row.seq, row.ts, row.data) for row in ledger.scan(kinds=(kind,), since_ts=since)
                if row.ts <= until_ts and isinstance(row.data, dict)]


def backup_evidence(home: Home, since: datetime, until: datetime) -> dict[str, Any]:
    """The backups recorded in the window (each verified before it was recorded) and
    whether the file is still there with the recorded sha256."""
    try:
        rows = _rows(home, "backup", since, until)
    except (AuroraError, OSError) as exc:
        return {"available": False, "detail": str(exc)}
    listed = []
    for seq, ts, data in rows[-MAX_LISTED:]:
        path = home.backups_dir / str(data.get("file"))
        present = path.is_file() and sha256_file(path) == data.get("sha256")
        listed.append({"seq": seq, "ts": ts, "file": data.get("file"),
                       "tree_size": data.get("tree_size"), "root_hash": data.get("root_hash"),
                       "sha256": data.get("sha256"),
                       "file_check": "sha256 matches" if present else
                       ("pruned" if not path.exists() else "sha256 DIFFERS")})
    return {"available": True, "total": len(rows), "listed": listed,
            "detail": "each backup passed PRAGMA integrity_check and an audit against its own "
                      "signed checkpoint before it was recorded in the ledger"}


def drill_evidence(home: Home, since: datetime, until: datetime) -> dict[str, Any]:
    """The drills recorded in the window, with their steps and the check afterwards."""
    try:
        rows = _rows(home, "drill", since, until)
    except (AuroraError, OSError) as exc:
        return {"available": False, "detail": str(exc)}
    listed = []
    for seq, ts, data in rows[-MAX_LISTED:]:
        steps = [s for s in data.get("steps") or [] if isinstance(s, dict)]
        verified = data.get("verified_after") or {}
        listed.append({
            "seq": seq, "ts": ts, "drill": data.get("drill") or data.get("alert"),
            "drill_id": data.get("drill_id"), "passed": data.get("passed"),
            "failure": data.get("failure"),
            "steps": {"ok": sum(1 for s in steps if s.get("ok") is True),
                      "failed": sum(1 for s in steps if s.get("ok") is False),
                      "skipped": sum(1 for s in steps if s.get("ok") is None)},
            "fired_at": data.get("fired_at"), "resolved_at": data.get("resolved_at"),
            "verified_after": bool(isinstance(verified, dict)
                                   and verified.get("prefix_of_live"))})
    return {"available": True, "total": len(rows), "listed": listed}


def gather(home: Home, *, since: datetime, until: datetime,
           checkpoint_note: str | None = None) -> dict[str, Any]:
    """The ``evidence`` object of a report over [since, until]."""
    return {"since": format_rfc3339(since), "until": format_rfc3339(until),
            "ledger": ledger_evidence(home, checkpoint_note),
            "incidents": incident_evidence(home, since, until),
            "backups": backup_evidence(home, since, until),
            "drills": drill_evidence(home, since, until)}
