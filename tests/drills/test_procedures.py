"""The rollback and restore drills on a real ledger with real backups: the rollback drill runs
the real ``aurora rollback``, and a step that could not run (the sqlite3 CLI missing) is not
a pass — neither for the drill nor for the Day-7 gate's "Runbook procedures tested". With the
ledger in PostgreSQL both rehearse the runbook's restore of a dump into an empty database."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from aurora.db.postgres import connect
from aurora.drills.procedures import DrillReport, restore_drill, rollback_drill
from aurora.home import Home
from aurora.ledger import Entry, Ledger
from aurora.ledger.backup import backup
from aurora.ledger.pgbackup import SCRATCH_DATABASE
from aurora.soak.collect import runbook_problems

needs_sqlite3 = pytest.mark.skipif(shutil.which("sqlite3") is None,
                                   reason="sqlite3 is not installed")


def _ledger_with_backups(root: Path, suffix: str = ".db.gz") -> Home:
    home = Home(root)
    with Ledger.open(home) as ledger:
        for i in range(5):
            ledger.append(Entry(kind="order", subject=f"o-{i}", data={"i": i}))
    backup(home, name=f"ledger-20260101{suffix}")
    with Ledger.open(home) as ledger:  # acknowledged after the backup: the RPO exposure
        ledger.append(Entry(kind="order", subject="o-late", data={"i": 5}))
    return home


def _without_sqlite3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH with gzip and gunzip but no sqlite3 CLI."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("gzip", "gunzip"):
        found = shutil.which(tool)
        assert found is not None
        os.symlink(found, bin_dir / tool)
    monkeypatch.setenv("PATH", str(bin_dir))


def _recorded(home: Home, report: DrillReport) -> dict[str, object]:
    assert report.ledger_seq is not None
    with Ledger.open(home, readonly=True) as ledger:
        data = ledger.get(report.ledger_seq).data
    assert isinstance(data, dict)
    return data


@needs_sqlite3
@pytest.mark.sqlite_mode
def test_the_rollback_drill_runs_the_real_rollback_and_passes(home: Path) -> None:
    live = _ledger_with_backups(home)
    report = rollback_drill(live)
    assert report.passed, report.failure
    steps = {s["step"]: s for s in report.steps}
    rollback = next(s for name, s in steps.items() if name.startswith("aurora rollback"))
    # emergency_rollback's own lines: it stopped the (scratch home's) services and restored
    assert rollback["detail"].startswith("aurora rollback: stopped nothing")
    assert "restored ledger-20260101.db.gz: 5 entries" in rollback["detail"]
    assert report.rpo["orders_lost"] == 1 and report.rpo["entries_lost"] >= 1
    data = _recorded(live, report)
    assert data["passed"] is True and runbook_problems(data) == []


@needs_sqlite3
@pytest.mark.sqlite_mode
def test_a_skipped_step_fails_the_rollback_drill_and_the_gate(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    live = _ledger_with_backups(home)
    _without_sqlite3(tmp_path, monkeypatch)
    report = rollback_drill(live)
    skipped = [s for s in report.steps if s["ok"] is None]
    assert [s["step"] for s in skipped] == ["the seed's gunzip + sqlite3 .restore"]
    assert "`sqlite3` is not installed" in skipped[0]["detail"]
    assert all(s["ok"] is True for s in report.steps if s not in skipped)
    assert not report.passed
    assert report.failure is not None and "was skipped" in report.failure
    data = _recorded(live, report)
    assert data["passed"] is False
    assert runbook_problems(data) != []


@needs_sqlite3
@pytest.mark.sqlite_mode
def test_a_skipped_step_fails_the_restore_drill(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    live = _ledger_with_backups(home)
    _without_sqlite3(tmp_path, monkeypatch)
    report = restore_drill(live)
    assert {s["step"] for s in report.steps if s["ok"] is None} == {
        "PRAGMA integrity_check of the backup", "restore one table (.dump audit_log)"}
    assert not report.passed


def test_the_gate_does_not_trust_a_passed_flag_over_skipped_steps() -> None:
    """A drill entry as the previous code wrote it: ``passed`` although the seed's raw
    commands never ran."""
    data = {"drill": "rollback", "passed": True, "failure": None,
            "verified_after": {"prefix_of_live": True},
            "steps": [{"step": "copy the live ledger", "ok": True, "detail": "5 entries"},
                      {"step": "the seed's gunzip + sqlite3 .restore", "ok": None,
                       "detail": "`sqlite3` is not installed", "optional": True}]}
    problems = runbook_problems(data)
    assert problems == ["the seed's gunzip + sqlite3 .restore was skipped: "
                        "`sqlite3` is not installed"]
    assert runbook_problems({**data, "steps": data["steps"][:1]}) == []


def _databases(url: str) -> set[str]:
    with connect(url) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database").fetchall()}


def test_both_drills_rehearse_the_postgresql_restore(home: Path, pg_ledger_url: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURORA_DATABASE_URL", pg_ledger_url)
    live = _ledger_with_backups(home, ".sql.gz")
    before = _databases(pg_ledger_url)
    for drill in (rollback_drill, restore_drill):
        report = drill(live)
        assert report.passed, report.failure
        assert "restored ledger-20260101.sql.gz into an empty database: 5 entries" in \
            report.steps[0]["detail"]
        assert report.verified_after["backup_tree_size"] == 5
        assert report.rpo["orders_lost"] == 1  # o-late, acknowledged after the backup
        data = _recorded(live, report)
        assert data["passed"] is True and runbook_problems(data) == []
    # the scratch databases (one to restore into, one to verify dumps in) are left empty
    scratch = {"aurora_drill", SCRATCH_DATABASE}
    assert _databases(pg_ledger_url) - scratch == before - scratch
    for name in scratch:
        with connect(pg_ledger_url.rsplit("/", 1)[0] + f"/{name}") as conn:
            assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                                ).fetchone() == (0,)
    with Ledger.open(live, readonly=True) as ledger:  # the live ledger only grew
        assert [r.kind for r in ledger.scan()][-2:] == ["drill", "drill"]
        assert ledger.size() == 5 + 1 + 1 + 2  # orders, backup entry, o-late, two drills


def test_a_postgresql_drill_with_no_verifying_backup_fails(
        home: Path, pg_ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURORA_DATABASE_URL", pg_ledger_url)
    live = _ledger_with_backups(home, ".sql.gz")
    dump = live.backups_dir / "ledger-20260101.sql.gz"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    (live.backups_dir / "ledger-latest.sql.gz").unlink()  # no fallback copy either
    report = rollback_drill(live)
    assert not report.passed
    assert report.failure is not None and "no backup verifies" in report.failure
    assert "ledger-20260101.sql.gz" in report.failure and "sha256" in report.failure
    assert not report.rpo and not report.verified_after
    assert _recorded(live, report)["passed"] is False
