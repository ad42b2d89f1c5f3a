"""`aurora health-check` checks, in a throwaway home with nothing running."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aurora.home import Home
from aurora.slo.health import CheckResult, health_table, run_checks
from aurora.wire import format_rfc3339


def checks(home: Path, *names: str) -> dict[str, CheckResult]:
    return {r.name: r for r in run_checks(Home(home), only=names or None)}


@pytest.mark.sqlite_mode
def test_nothing_running_fails_cleanly_with_a_reason_per_check(home: Path) -> None:
    results = checks(home)
    assert list(results) == [
        "bridge /healthz", "bridge /readyz", "treaty metrics", "provider metrics",
        "prometheus targets", "prometheus rules", "ledger integrity", "ledger verify-audit",
        "backup age", "disk space", "keys", "clock"]
    for name in ("bridge /healthz", "bridge /readyz", "treaty metrics", "provider metrics",
                 "prometheus targets", "prometheus rules"):
        assert not results[name].ok and "unreachable" in results[name].detail, name
    assert not results["ledger integrity"].ok and "no ledger" in results["ledger integrity"].detail
    assert not results["backup age"].ok and "no ledger backup" in results["backup age"].detail
    assert not results["ledger verify-audit"].ok and results["ledger verify-audit"].detail
    assert results["keys"].ok, results["keys"].detail
    assert results["disk space"].ok, results["disk space"].detail
    assert results["clock"].ok and "Prometheus unreachable" in results["clock"].detail
    for result in results.values():
        assert "\n" not in result.detail


def test_missing_key_fails_the_keys_check_naming_it(home: Path) -> None:
    (home / "secrets" / "tenants" / "helix-bio.key").unlink()
    result = checks(home, "keys")["keys"]
    assert not result.ok and "helix-bio.key" in result.detail


def _backup(home: Path, age_s: float) -> Path:
    path = home / "ops" / "backups" / "ledger-20251022.db.gz"
    path.write_bytes(b"\x1f\x8b")
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def _pretend_backup_loop_runs(home: Path) -> None:
    """A PID file naming this very process, in aurora.procs' format."""
    stat = Path(f"/proc/{os.getpid()}/stat").read_text()
    start_time = int(stat[stat.rindex(")") + 2:].split()[19])
    (home / "ops" / "run" / "backup.pid").write_text(
        json.dumps({"pid": os.getpid(), "start_time": start_time, "argv": ["backup"]}))


@pytest.mark.parametrize("age_s,loop,ok", [
    (20 * 60, False, True),  # daily backups: 20 min is fine
    (25 * 3600, False, False),  # a day and an hour: missed one
    (5 * 60, True, True),  # backup loop: RPO 15 min
    (20 * 60, True, False),
])
def test_backup_age_limit_depends_on_the_backup_loop(home: Path, age_s: float, loop: bool,
                                                     ok: bool) -> None:
    _backup(home, age_s)
    if loop:
        _pretend_backup_loop_runs(home)
    result = checks(home, "backup age")["backup age"]
    assert result.ok is ok, result.detail
    assert ("backup loop running" if loop else "no backup loop") in result.detail


def _ledger(home: Path, newest: datetime) -> None:
    with sqlite3.connect(home / "ops" / "data" / "remembrancer.db") as db:
        db.execute("CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, ts TEXT)")
        db.execute("INSERT INTO audit_log (ts) VALUES (?)", (format_rfc3339(newest),))


@pytest.mark.sqlite_mode
def test_ledger_integrity_and_a_clock_behind_the_ledger(home: Path) -> None:
    _ledger(home, datetime.now(UTC) + timedelta(hours=1))
    results = checks(home, "ledger integrity", "clock")
    assert results["ledger integrity"].ok, results["ledger integrity"].detail
    assert not results["clock"].ok and "in the future" in results["clock"].detail


@pytest.mark.sqlite_mode
def test_clock_after_the_ledger_passes(home: Path) -> None:
    _ledger(home, datetime.now(UTC) - timedelta(minutes=1))
    result = checks(home, "clock")["clock"]
    assert result.ok and "after the ledger's newest entry" in result.detail


@pytest.mark.sqlite_mode
def test_a_corrupt_ledger_is_a_failed_check_not_a_crash(home: Path) -> None:
    (home / "ops" / "data" / "remembrancer.db").write_bytes(b"not a database" * 100)
    result = checks(home, "ledger integrity")["ledger integrity"]
    assert not result.ok and "not a database" in result.detail


def test_table_has_one_line_per_check(home: Path) -> None:
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(health_table(run_checks(Home(home), only=("keys", "disk space"))))
    text = console.export_text()
    assert "2/2 checks pass" in text and text.count("PASS") == 2


@pytest.mark.sqlite_mode
def test_a_real_ledger_and_backup_pass_and_tampering_fails_verify_audit(home: Path) -> None:
    """With aurora.ledger's own CLI: append, checkpoint, back up; then rewrite a leaf."""
    import subprocess
    import sys

    def ledger(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "aurora", "ledger", *args], check=True,
                       capture_output=True, env={**os.environ, "AURORA_HOME": str(home)},
                       timeout=120)

    ledger("append", "--kind", "note", "--data", '{"n": 1}')
    ledger("append", "--kind", "note", "--data", '{"n": 2}')
    ledger("checkpoint")
    ledger("backup")
    names = ("ledger integrity", "ledger verify-audit", "backup age", "clock")
    results = checks(home, *names)
    assert all(r.ok for r in results.values()), results
    assert "tree size" in results["ledger verify-audit"].detail
    with sqlite3.connect(home / "ops" / "data" / "remembrancer.db") as db:
        db.execute("DROP TRIGGER audit_log_no_update")  # what an attacker with the file can do
        db.execute("UPDATE audit_log SET payload = replace(payload, '\"n\":1', '\"n\":9') "
                   "WHERE seq = 0")
    result = checks(home, "ledger verify-audit")["ledger verify-audit"]
    assert not result.ok and "TAMPERED" in result.detail, result.detail


def test_postgresql_ledger_integrity_backup_and_tampering(home: Path, pg_ledger_url: str,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """database_url set: the same checks read the ledger in PostgreSQL (amcheck, audit)."""
    import subprocess
    import sys

    from aurora.db.postgres import connect

    monkeypatch.setenv("AURORA_DATABASE_URL", pg_ledger_url)
    for args in (("append", "--kind", "note", "--data", '{"n": 1}'), ("backup",)):
        subprocess.run([sys.executable, "-m", "aurora", "ledger", *args], check=True,
                       capture_output=True, env={**os.environ, "AURORA_HOME": str(home)},
                       timeout=120)
    names = ("ledger integrity", "ledger verify-audit", "backup age", "clock")
    results = checks(home, *names)
    assert all(r.ok for r in results.values()), results
    assert "amcheck ok" in results["ledger integrity"].detail
    assert not (home / "ops" / "data" / "remembrancer.db").exists()
    with connect(pg_ledger_url) as db:
        db.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        db.execute("UPDATE audit_log SET payload = replace(payload, '\"n\":1', '\"n\":9') "
                   "WHERE seq = 0")
    result = checks(home, "ledger verify-audit")["ledger verify-audit"]
    assert not result.ok and "TAMPERED at leaf 0" in result.detail, result.detail
