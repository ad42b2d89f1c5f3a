"""A full 7-day rehearsal on a compressed clock against the real stack: its gate passes, and
what it recorded is what the seed's protocol asks for."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from aurora.config import load_stack
from aurora.ledger import Ledger
from aurora.ledger.backup import backup_suffix, verify_backup
from aurora.soak.evidence import load_state
from aurora.soak.schedule import DAILY, REQUIRED_DAYS, RPO_SECONDS
from aurora.soak.verdict import run_gate

from .conftest import NEEDS, REHEARSAL_TIMEOUT, Rehearsed

pytestmark = [pytest.mark.integration, pytest.mark.slow, *NEEDS,
              pytest.mark.timeout(REHEARSAL_TIMEOUT)]  # the first test also waits for it
BACKUPS = (6 * 24 + 15) * 4 + 1  # day 1 09:00 to day 8 00:00, every 15 min of soak clock


def test_seven_day_rehearsal_passes_the_gate(rehearsal: Rehearsed) -> None:
    verdict = rehearsal.result.verdict
    assert verdict is not None, rehearsal.lines[-20:]
    failing = {i.key: i.reason for i in verdict.result.items if i.outcome != "pass"}
    assert failing == {}
    assert verdict.result.outcome == "pass" and verdict.result.exit_code == 0
    # SLOs judged from what the daily checks recorded while the stack ran
    assert verdict.result.item("slo").evidence["source"] == "recorded"
    document = json.loads(verdict.path.read_text())
    assert document["outcome"] == "pass" and len(document["items"]) == 9
    assert verdict.signed is not None  # signed like the governance report


def test_the_verdict_is_the_same_once_prometheus_is_gone(rehearsal: Rehearsed,
                                                          tmp_path: Path) -> None:
    """The rehearsal gated itself with its Prometheus up; gated again now that its stack is
    down, the same evidence gives the same verdict, item by item, SLOs included."""
    up = rehearsal.result.verdict
    assert up is not None
    prometheus = load_stack(rehearsal.home).prometheus_url
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{prometheus}/-/ready", timeout=2)
    down = run_gate(rehearsal.home, rehearsal.result.state.soak_id,
                    output=tmp_path / "day7-gate.json")
    assert down.result.outcome == up.result.outcome
    assert [(i.key, i.outcome) for i in down.result.items] == \
        [(i.key, i.outcome) for i in up.result.items]
    slo_up, slo_down = up.result.item("slo"), down.result.item("slo")
    assert (slo_down.reason, slo_down.evidence) == (slo_up.reason, slo_up.evidence)
    # what the gate needed was recorded at each check: drill windows, order counts
    checks = rehearsal.result.state.records("slo-check")
    assert all({"drill_holes", "drill_free_s", "judged_s"} <= set(r.detail) for r in checks)
    assert all("orders" in seg for r in checks for seg in r.detail["segments"])


def test_every_slot_ran_once_and_passed(rehearsal: Rehearsed) -> None:
    state = rehearsal.result.state
    assert state.ended is not None and state.pending() == []
    assert state.duplicates == [] and state.interrupted == []
    assert all(r.attempt == 1 for r in state.finished.values())
    failed = {r.key: r.summary for r in state.records() if not r.passed}
    assert failed == {}
    days = {r.day for r in state.records("smoke")}
    assert days == set(range(1, REQUIRED_DAYS + 1))
    # every 15 min from day 1 09:00 through day 8 00:00, except 09:00 (the daily backup)
    assert len(state.records("rpo-backup")) == BACKUPS - 7
    # compressed tasks start exactly at their slot: the clock waits for overruns
    assert all(r.sim_start == r.scheduled for r in state.records())


def test_files_are_named_by_the_soak_clock(rehearsal: Rehearsed) -> None:
    home, plan = rehearsal.home, rehearsal.result.state.plan
    suffix = backup_suffix(home)  # .sql.gz dumps in PostgreSQL mode
    for day in range(REQUIRED_DAYS):
        ymd = (plan.start_date + timedelta(days=day)).strftime("%Y%m%d")
        assert (home.logs_dir / f"smoke-{ymd}.log").read_text().rstrip().endswith(
            "smoke-e2e: PASS (9/9 steps passed)")
        assert (home.backups_dir / f"ledger-{ymd}{suffix}").is_file()
        assert json.loads((home.reports_dir / f"daily-{ymd}.json").read_text())["window"]
        assert (home.root / f"metrics-{ymd}.tar.gz").is_file()
    if suffix != ".db.gz":  # a dump: loaded into a scratch database against its seal
        assert verify_backup(home, home.backups_dir / f"ledger-{ymd}{suffix}").tree_size
        return
    # the seed's own command works on a daily backup
    raw = home.root / "check.db"
    raw.write_bytes(gzip.decompress((home.backups_dir / f"ledger-{ymd}.db.gz").read_bytes()))
    check = subprocess.run(["sqlite3", str(raw), "PRAGMA integrity_check;"],
                           capture_output=True, text=True, check=True)
    assert check.stdout.strip() == "ok"
    raw.unlink()


def test_the_hour_72_bundle_is_signed_and_verifies_with_gpg(rehearsal: Rehearsed,
                                                            tmp_path: Path) -> None:
    reports = rehearsal.home.reports_dir
    record = rehearsal.result.state.finished["h72/governance-72h"]
    assert record.passed and record.scheduled.hour == 0 and record.day == 4
    for name in ("canary-72h.json", "canary-72h.json.asc", "canary-72h.json.sha256",
                 "canary-72h.pdf", "canary-72h.pdf.asc", "canary-72h.pdf.sha256",
                 "canary-72h.checkpoint", "metrics-72h.tar.gz", "governance-72h.tar.gz"):
        assert (reports / name).is_file(), name
    manifest = json.loads((reports / "canary-72h.manifest.json").read_text())["files"]
    assert {"reports/canary-72h.pdf", "reports/canary-72h.pdf.asc"} <= set(manifest)
    subprocess.run(["sha256sum", "-c", "canary-72h.json.sha256", "canary-72h.pdf.sha256"],
                   cwd=reports, check=True, capture_output=True)
    # the PDF prints the signed JSON's numbers
    report = json.loads((reports / "canary-72h.json").read_text())
    text = subprocess.run(["pdftotext", "-layout", str(reports / "canary-72h.pdf"), "-"],
                          check=True, capture_output=True, text=True).stdout
    assert report["status"].upper() in text and report["treaty_id"] in text
    assert report["evidence"]["ledger"]["checkpoint"]["root"] in text
    # the seed's `gpg --verify` with the exported public key in a fresh keyring
    keyring = tmp_path / "gpg"
    keyring.mkdir(mode=0o700)
    env = {"GNUPGHOME": str(keyring), "PATH": "/usr/bin:/bin"}
    subprocess.run(["gpg", "--batch", "--import", str(reports / "canary-72h.pub.asc")],
                   env=env, capture_output=True, check=True)
    checks = [subprocess.run(["gpg", "--batch", "--verify", f"reports/{name}.asc",
                              f"reports/{name}"], cwd=rehearsal.home.root, env=env,
                             capture_output=True, text=True)
              for name in ("canary-72h.json", "canary-72h.pdf", "day7-gate.json",
                           "day7-gate.pdf")]
    subprocess.run(["gpgconf", "--homedir", str(keyring), "--kill", "all"], capture_output=True)
    for verify in checks:
        assert verify.returncode == 0, verify.stderr
        assert record.detail["fingerprint"] in verify.stderr.replace(" ", "")
    gate_text = subprocess.run(["pdftotext", str(reports / "day7-gate.pdf"), "-"], check=True,
                               capture_output=True, text=True).stdout
    assert "Overall: PASS" in gate_text and rehearsal.result.state.soak_id in gate_text


def test_evidence_is_in_the_ledger_with_digests(rehearsal: Rehearsed) -> None:
    with Ledger.open(rehearsal.home, readonly=True) as ledger:
        state = load_state(ledger, rehearsal.result.state.soak_id)
        kinds = {row.kind for row in ledger.scan()}
    assert {"soak_task", "backup", "drill", "incident", "order"} <= kinds
    smoke = state.records("smoke")[0]
    assert smoke.output_sha256 and smoke.log == f"logs/smoke-{smoke.scheduled:%Y%m%d}.log"
    assert smoke.real_end > smoke.real_start
    for task in (t for _, t in DAILY):
        record = state.records(task)[0]
        assert record.output_sha256 and record.log, task


def test_drills_fired_resolved_and_verified(rehearsal: Rehearsed) -> None:
    state = rehearsal.result.state
    fill = state.records("drill-alert-fill")[0]
    drill = fill.detail["drill"]
    assert drill["passed"] and drill["sev"] == "SEV2" and drill["resolved_at"]
    for name in ("drill-restore", "drill-rollback"):
        report = state.records(name)[0].detail["drill"]
        assert report["passed"] and report["verified_after"]["prefix_of_live"], report
        # the seed's raw commands ran verbatim inside the scratch copy
        assert all(step["ok"] for step in report["steps"]), report["steps"]
    rollback = state.records("drill-rollback")[0].detail["drill"]
    assert rollback["rpo"]["orders_lost"] >= 0
    assert not (rehearsal.home.data_dir / "soak-scratch").exists() or \
        not any((rehearsal.home.data_dir / "soak-scratch").iterdir())


def test_rpo_and_append_only(rehearsal: Rehearsed) -> None:
    verdict = rehearsal.result.verdict
    assert verdict is not None
    rpo = verdict.result.item("rpo").evidence
    assert rpo["largest_gap_s"] <= RPO_SECONDS and rpo["verified_backups"] >= BACKUPS
    ledger = verdict.result.item("ledger").evidence
    assert ledger["proof"]["ok"] and ledger["day1"]["tree_size"] < ledger["day7"]["tree_size"]
    # only the newest few periodic backup files stay on disk
    suffix = backup_suffix(rehearsal.home)
    periodic = list(rehearsal.home.backups_dir.glob(f"ledger-*-*{suffix}"))
    assert 0 < len(periodic) <= 4
    # a pruned dump takes its seal with it (PostgreSQL mode: <file>.checkpoint)
    seals = {p.name.removesuffix(".checkpoint")
             for p in rehearsal.home.backups_dir.glob("*.checkpoint")}
    assert seals <= {p.name for p in rehearsal.home.backups_dir.iterdir()}


def test_status_and_gate_commands(rehearsal: Rehearsed) -> None:
    env = {**os.environ, "AURORA_HOME": str(rehearsal.home.root), "COLUMNS": "200"}
    aurora = [sys.executable, "-m", "aurora"]
    status = subprocess.run([*aurora, "soak", "status", "--json"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["failed"] == [] and doc["next"] is None and doc["ended"]
    table = subprocess.run([*aurora, "soak", "status"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert "verify-audit" in table.stdout and table.returncode == 0
    with Ledger.open(rehearsal.home, readonly=True) as ledger:
        assert any(True for _ in ledger.scan(kinds=("soak_task",)))
