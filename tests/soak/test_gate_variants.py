"""The gate on tampered copies of the passing rehearsal: each fault fails the right item.

Each test copies the finished rehearsal's home, changes one thing after the fact and runs the
gate on the copy (its stack is down; SLOs always come from the recorded daily checks).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aurora import gpg
from aurora.home import Home
from aurora.ledger import Ledger
from aurora.ledger.storage import ledger_location
from aurora.soak.verdict import Verdict, run_gate
from support import raw_sql

from .conftest import NEEDS, REHEARSAL_TIMEOUT, Rehearsed, copy_home

pytestmark = [pytest.mark.integration, pytest.mark.slow, *NEEDS,
              pytest.mark.timeout(REHEARSAL_TIMEOUT)]  # the first test also waits for it


@pytest.fixture
def copy(rehearsal: Rehearsed, tmp_path: Path) -> Home:
    return copy_home(rehearsal.home, tmp_path / "copy")


def gate(home: Home, rehearsal: Rehearsed) -> Verdict:
    return run_gate(home, rehearsal.result.state.soak_id)


def failing(verdict: Verdict) -> dict[str, str]:
    return {i.key: i.reason for i in verdict.result.items if i.outcome != "pass"}


def day_file(rehearsal: Rehearsed, task: str, day: int) -> str:
    record = next(r for r in rehearsal.result.state.records(task) if r.day == day)
    return record.files[0].path


def test_the_untouched_copy_passes_from_recorded_checks(copy: Home,
                                                        rehearsal: Rehearsed) -> None:
    verdict = gate(copy, rehearsal)
    assert failing(verdict) == {}
    assert verdict.result.exit_code == 0
    assert verdict.result.item("slo").evidence["source"] == "recorded"


def test_a_deleted_backup_fails_the_backups_item(copy: Home, rehearsal: Rehearsed) -> None:
    (copy.root / day_file(rehearsal, "backup", 3)).unlink()
    verdict = gate(copy, rehearsal)
    assert set(failing(verdict)) == {"backups"}
    assert "day 3" in failing(verdict)["backups"] and "missing" in failing(verdict)["backups"]
    assert verdict.result.exit_code == 1


def test_an_altered_backup_fails_the_backups_item(copy: Home, rehearsal: Rehearsed) -> None:
    # a valid, verifiable backup — but not the one the ledger recorded for day 5
    shutil.copyfile(copy.root / day_file(rehearsal, "backup", 4),
                    copy.root / day_file(rehearsal, "backup", 5))
    verdict = gate(copy, rehearsal)
    assert set(failing(verdict)) == {"backups"}
    assert "day 5" in failing(verdict)["backups"]
    assert "altered" in failing(verdict)["backups"]


def test_a_forged_report_signature_fails_the_governance_item(
        copy: Home, rehearsal: Rehearsed, signing_key: tuple[Path, str]) -> None:
    keyring, other = signing_key
    report = copy.reports_dir / "canary-72h.json"
    # a signature by another key, with that key's public half put where the real one was
    gpg.sign_detached(report, other, gnupghome=keyring)
    gpg.export_public(other, keyring, copy.reports_dir / "canary-72h.pub.asc")
    verdict = gate(copy, rehearsal)
    assert set(failing(verdict)) == {"governance"}
    assert "canary-72h.json.asc" in failing(verdict)["governance"]
    # the key named in the ledger did not make this signature
    assert verdict.result.item("governance").evidence["signature"].startswith(f"signed by {other}")


def test_a_missing_report_pdf_fails_the_governance_item(copy: Home,
                                                         rehearsal: Rehearsed) -> None:
    (copy.reports_dir / "canary-72h.pdf").unlink()
    verdict = gate(copy, rehearsal)
    assert set(failing(verdict)) == {"governance"}
    assert "canary-72h.pdf is missing" in failing(verdict)["governance"]


def test_a_report_pdf_of_another_document_fails_the_governance_item(
        copy: Home, rehearsal: Rehearsed) -> None:
    # a stale rendering: the board's PDF replaced by one of another report, checksum "fixed"
    from aurora.docket.render import pdf, slo_report_html

    daily = sorted(copy.reports_dir.glob("daily-*.json"))[-1]
    other = json.loads(daily.read_text())
    target = copy.reports_dir / "canary-72h.pdf"
    target.write_bytes(pdf(slo_report_html(other, "canary-72h"), other))
    gpg.write_checksum(target)
    verdict = gate(copy, rehearsal)
    assert set(failing(verdict)) == {"governance"}
    reason = failing(verdict)["governance"]
    assert "canary-72h.pdf was altered" in reason
    assert "canary-72h.pdf signature" in reason
    assert "canary-72h.pdf is not the rendering of canary-72h.json" in reason


def test_a_tampered_ledger_row_fails_the_append_only_item(copy: Home,
                                                          rehearsal: Rehearsed) -> None:
    with Ledger.open(copy, readonly=True) as ledger:
        seq = next(iter(ledger.scan(kinds=("order",)))).seq
    # what a deliberate attacker does: drop the append-only triggers, rewrite a row
    raw_sql(ledger_location(copy), "UPDATE audit_log SET payload = replace(payload, "
            "'\"gpu_hours\":', '\"gpu_hours\":9') WHERE seq = ?", params=(seq,))
    verdict = gate(copy, rehearsal)
    assert set(failing(verdict)) == {"ledger"}
    assert "AUDIT LOG TAMPERED" in failing(verdict)["ledger"]
    assert f"leaf {seq}" in failing(verdict)["ledger"]


def test_a_smoke_log_rewritten_after_the_fact_fails_the_smoke_item(
        copy: Home, rehearsal: Rehearsed) -> None:
    log = copy.root / day_file(rehearsal, "smoke", 6)
    log.write_text(log.read_text().replace("PASS", "FAIL"))
    verdict = gate(copy, rehearsal)
    assert set(failing(verdict)) == {"smoke"}
    assert "day 6" in failing(verdict)["smoke"]


def test_an_unsigned_gate_run_leaves_no_stale_signature(copy: Home, rehearsal: Rehearsed) -> None:
    """Issue 13 #11: the rehearsal signed reports/day7-gate.json; a later gate run without
    a key rewrote the verdict and left the old .asc beside it (gpg --verify: BAD)."""
    report = copy.reports_dir / "day7-gate.json"
    assert report.with_name("day7-gate.json.asc").exists()  # signed by the rehearsal
    verdict = gate(copy, rehearsal)
    assert verdict.signed is None and "unsigned" in verdict.sign_note
    assert not report.with_name("day7-gate.json.asc").exists()
    assert gpg.verify_checksum(report) is True  # the .sha256 describes the new verdict
