"""`aurora incident ...`: list, show, ack, resolve, report (in-process, real clock)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from aurora.cli import run_app
from aurora.home import Home
from aurora.incidents.cli import app
from aurora.incidents.service import IncidentStore
from aurora.incidents.webhook import parse_webhook

from .conftest import ledger_incident_entries, recorded


def aurora(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``aurora incident ARGV`` as the CLI does; (exit code, stdout, stderr)."""
    try:
        run_app(app, list(argv), prog="aurora incident")
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def incident_id(aurora_home: Home) -> str:
    with IncidentStore.open(aurora_home, write=True) as store:
        [opened] = store.ingest(parse_webhook(recorded("fill-rate-firing.json"))).opened
    return opened


def test_operator_flow(capsys: pytest.CaptureFixture[str], aurora_home: Home,
                       incident_id: str) -> None:
    code, out, _ = aurora(capsys, "list")
    assert code == 0 and incident_id in out and "SEV2" in out and "due in" in out
    code, out, _ = aurora(capsys, "list", "--open", "--json")
    [listed] = json.loads(out)["incidents"]
    assert listed["id"] == incident_id and listed["sla"] == "pending"

    code, out, _ = aurora(capsys, "ack", incident_id, "--by", "alice", "--note", "on it")
    assert code == 0 and f"{incident_id} acknowledged by alice; response time" in out
    code, _, err = aurora(capsys, "ack", incident_id, "--by", "bob")
    assert code == 1 and err.startswith("error: ") and "already acknowledged by alice" in err
    assert err.count("\n") == 1

    code, out, _ = aurora(capsys, "show", incident_id)
    assert code == 0 and "timeline:" in out and "acknowledged" in out and "by=alice" in out
    code, out, _ = aurora(capsys, "resolve", incident_id, "--note", "provider back",
                          "--by", "alice")
    assert code == 0 and f"{incident_id} resolved by alice" in out
    shown = json.loads(aurora(capsys, "show", incident_id, "--json")[1])
    assert [e["event"] for e in shown["events"]] == ["opened", "acknowledged", "resolved"]
    assert shown["resolution"] == "provider back"
    assert aurora(capsys, "list", "--open")[1].strip() == "no incidents open"

    code, out, _ = aurora(capsys, "report", "--since", "7d")
    assert code == 0 and "alert response within SLA: 1/1 (100.0 %)" in out
    assert "SEV1/SEV2 incidents: 1" in out
    report = json.loads(aurora(capsys, "report", "--json")[1])
    assert report["sla"] == {"met": 1, "total": 1, "percent": 100.0,
                             "line": "alert response within SLA: 1/1 (100.0 %)"}
    assert report["by_sev"]["SEV2"]["acknowledged"] == 1
    assert len(ledger_incident_entries(aurora_home)) == 3


def test_resolve_defaults_by_to_the_user(capsys: pytest.CaptureFixture[str], incident_id: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "carol")
    code, out, _ = aurora(capsys, "resolve", incident_id, "--note", "done")
    assert code == 0 and "resolved by carol" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["ack", "INC-20200101-0001", "--by", "alice"], "no incident INC-20200101-0001"),
    (["show", "42"], "not an incident id"),
    (["ack", "{id}", "--by", "alertmanager"], "--by 'alertmanager'"),
    (["ack", "{id}", "--by", "two words"], "--by 'two words'"),
    (["resolve", "{id}", "--note", "  "], "--note must say"),
    (["report", "--since", "last tuesday"], "--since"),
])
def test_errors_are_one_line(capsys: pytest.CaptureFixture[str], incident_id: str,
                             argv: list[str], message: str) -> None:
    code, out, err = aurora(capsys, *(a.replace("{id}", incident_id) for a in argv))
    assert code != 0 and err.startswith("error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_list_on_a_fresh_home(capsys: pytest.CaptureFixture[str], aurora_home: Home) -> None:
    code, out, _ = aurora(capsys, "list")
    assert code == 0 and out.strip() == "no incidents"
    report = json.loads(aurora(capsys, "report", "--json")[1])
    assert report["sla"]["percent"] is None and report["major_incidents"] == 0


def test_registered_in_the_aurora_command(aurora_home: Home) -> None:
    done = subprocess.run([sys.executable, "-m", "aurora", "incident", "--help"],
                          capture_output=True, text=True, env=os.environ.copy(), timeout=60)
    assert done.returncode == 0
    for command in ("list", "show", "ack", "resolve", "report", "serve"):
        assert command in done.stdout
    assert "todo" not in done.stdout


FORGED = {"summary": "\x1b[2K\racknowledged:  2026-11-25 09:01:00Z by alice",
          "instance": "a\r\nacknowledged:  fake\x00\u202eecila",
          "job": "\x9b31m[bold]x[/bold]\u2028"}


def test_outside_text_is_escaped_when_shown(capsys: pytest.CaptureFixture[str],
                                            aurora_home: Home) -> None:
    """A label can not move the cursor, end a line, or reverse the text (issue 13, defect 7)."""
    from .conftest import alert, body, notification

    hostile = alert("TreatyFillRateLow", instance=FORGED["instance"], job=FORGED["job"])
    hostile["annotations"]["summary"] = FORGED["summary"]
    hostile["labels"]["alertname"] = "Treaty\x1b]0;owned\x07FillRateLow"
    with IncidentStore.open(aurora_home, write=True) as store:
        [opened] = store.ingest(parse_webhook(body(notification(hostile)))).opened
    for argv in (("show", opened), ("list",), ("show", opened, "--json"), ("list", "--json")):
        code, out, err = aurora(capsys, *argv)
        assert code == 0, err
        for bad in ("\x1b", "\r", "\x00", "\u202e", "\x9b", "\u2028", "\x07"):
            assert bad not in out, (argv, bad)
        if "--json" not in argv:
            # one line per field: nothing a label carries starts a line of its own
            assert not any(line.startswith("acknowledged:") and "by alice" in line
                           for line in out.splitlines()), out
    code, out, _ = aurora(capsys, "show", opened)
    assert "\\x1b[2K\\x0dacknowledged:" in out and "\\u202e" in out  # visibly escaped
    assert json.loads(aurora(capsys, "show", opened, "--json")[1])["summary"] == FORGED["summary"]
