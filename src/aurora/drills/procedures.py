"""Drills of the seed's emergency procedures: the rollback and data recovery.

``rollback_drill`` runs the real ``aurora rollback``
(:func:`aurora.ledger.rollback.emergency_rollback`) and ``restore_drill`` the seed's "Data
Recovery", both against a scratch copy under ``ops/data/soak-scratch/`` — never the live
database — and check the ledger afterwards:
``verify-audit`` of the result, its root equal to the backup's signed root, and that root a
prefix of the live ledger (a consistency proof). The seed's raw commands (``gunzip``,
``sqlite3 ... ".restore ..."``, ``PRAGMA integrity_check``, ``.dump audit_log | sqlite3``) run
verbatim inside the scratch copy; where a binary is missing the step is *skipped*, and a
drill with a skipped step has not passed. Each drill is recorded in the ledger as a
``drill`` entry. The rollback drill also measures the RPO exposure: how many
acknowledged orders a restore from the newest backup would lose right now.

With the ledger in PostgreSQL there is no ``aurora rollback`` and no SQLite file for the
seed's commands: both drills rehearse the runbook's procedure instead (restore a verified
``.sql.gz`` dump into an empty database, here the scratch database ``aurora_drill`` on the
live server, emptied afterwards) and check the result the same way.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aurora.digests import sha256_file
from aurora.errors import AuroraError
from aurora.home import Home
from aurora.ledger import Ledger
from aurora.ledger.audit import AuditReport, audit
from aurora.ledger.backup import (
    LATEST,
    copy_backup,
    gunzip_to,
    integrity_check,
    read_sidecar,
    restore,
    snapshot,
)
from aurora.ledger.errors import LedgerError
from aurora.ledger.files import load_verifier, origin
from aurora.ledger.pgbackup import SUFFIX as PG_SUFFIX
from aurora.ledger.rollback import (
    SCRATCH,
    Say,
    backups_newest_first,
    emergency_rollback,
)
from aurora.ledger.storage import Location, ledger_location
from aurora.wire import format_rfc3339, utc_now

DAILY_NAME = "ledger-????????.db.gz"
StepOutcome = Literal["passed", "failed", "skipped"]


class DrillFailed(AuroraError):
    """A drill step failed (recorded, then reported)."""


@dataclass
class DrillReport:
    drill: str
    drill_id: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    verified_after: dict[str, Any] = field(default_factory=dict)
    rpo: dict[str, Any] = field(default_factory=dict)
    ledger_seq: int | None = None

    @property
    def passed(self) -> bool:
        """Every step ran and passed: a skipped step (``ok`` None) is not a pass."""
        return bool(self.steps) and all(s["ok"] is True for s in self.steps)

    @property
    def failure(self) -> str | None:
        failed = next((f"{s['step']}: {s['detail']}" for s in self.steps if s["ok"] is False),
                      None)
        return failed or next((f"{s['step']} was skipped: {s['detail']}"
                               for s in self.steps if s["ok"] is None), None)

    def to_json(self) -> dict[str, Any]:
        return {"drill": self.drill, "drill_id": self.drill_id, "passed": self.passed,
                "failure": self.failure, "steps": self.steps,
                "verified_after": self.verified_after, "rpo": self.rpo,
                "at": format_rfc3339(utc_now())}

    def step(self, name: str, work: Callable[[], str], say: Say) -> bool:
        """Run one step; record ok/failed (or skipped: ok None) with its detail. True unless
        it failed: the next steps still run after a skip, but the drill has not passed."""
        ok: bool | None
        try:
            detail, ok = work(), True
        except _Skipped as exc:
            detail, ok = str(exc), None
        except AuroraError as exc:
            detail, ok = str(exc), False
        except (OSError, sqlite3.Error, subprocess.SubprocessError) as exc:
            detail, ok = f"{type(exc).__name__}: {exc}", False
        self.steps.append({"step": name, "ok": ok, "detail": detail})
        say(f"{'PASS' if ok else 'SKIP' if ok is None else 'FAIL'}  {name}: {detail}")
        return ok is not False


class _Skipped(Exception):
    """A step that cannot run here (a binary is missing): neither pass nor fail."""


# --- scratch copies --------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_home(home: Home, name: str) -> Iterator[Home]:
    """A throwaway home beside the live one: its configuration and ledger keys, no services,
    no database until the drill puts one there. Removed afterwards."""
    root = home.data_dir / SCRATCH / name
    shutil.rmtree(root, ignore_errors=True)
    try:
        shutil.copytree(home.config_dir, root / "config")
        scratch = Home(root)
        for directory in (scratch.data_dir, scratch.backups_dir, scratch.keys_dir,
                          scratch.run_dir, scratch.logs_dir):
            directory.mkdir(parents=True, exist_ok=True)
        scratch.secrets_dir.mkdir(mode=0o700, exist_ok=True)
        shutil.copy2(home.ledger_vkey, scratch.ledger_vkey)
        shutil.copy2(home.ledger_key, scratch.ledger_key)
        scratch.ledger_key.chmod(0o600)
        yield scratch
    finally:
        shutil.rmtree(root, ignore_errors=True)


def scratch_db(scratch: Home) -> Path:
    # explicit, never Home.ledger_db: $AURORA_LEDGER_DB may point at the live database
    return scratch.data_dir / "remembrancer.db"


def _run(argv: list[str], cwd: Path, stdin: bytes | None = None
         ) -> subprocess.CompletedProcess[bytes]:
    if shutil.which(argv[0]) is None:
        raise _Skipped(f"`{argv[0]}` is not installed")
    result = subprocess.run(argv, cwd=cwd, input=stdin, capture_output=True, timeout=300)
    if result.returncode != 0:
        raise DrillFailed(f"`{' '.join(argv)}` exited {result.returncode}: "
                          f"{result.stderr.decode(errors='replace').strip()[:200]}")
    return result


def _audit(home: Home, db: Location, note: tuple[str, str] | None = None) -> AuditReport:
    return audit(db, [load_verifier(home)], origin=origin(home), checkpoint_note=note)


def _root_at(home: Home, db: Location, size: int) -> str:
    with Ledger.open(home, db=db, readonly=True) as ledger:
        return ledger.consistency_proof(size, ledger.size()).old_root.hex()


def _prefix_of_live(home: Home, size: int, root: str) -> str:
    """Prove the tree of ``size`` with ``root`` is a prefix of the live ledger."""
    with Ledger.open(home, readonly=True) as live:
        proof = live.consistency_proof(size)
    proof.verify()
    if proof.old_root.hex() != root:
        raise DrillFailed(f"the live ledger's root at size {size} differs from the restored one")
    return f"consistency proof {size} → {proof.new_size} verifies against the live ledger"


def _orders_after(home: Home, size: int) -> tuple[int, int]:
    """(acknowledged orders, all entries) in the live ledger at or after leaf ``size``."""
    with Ledger.open(home, readonly=True) as live:
        orders = sum(1 for _ in live.scan(kinds="order", start_seq=size))
        return orders, live.size() - size


def _check_restored(home: Home, scratch: Home, target: Location, backup_name: str,
                    backup_size: int, report: DrillReport) -> str:
    """A restored ledger verifies, holds the backup's tree (the root its sidecar records)
    and that tree is a prefix of the live ledger; the RPO exposure goes in the report."""
    recorded = read_sidecar(scratch.backups_dir / backup_name) or \
        read_sidecar(home.backups_dir / backup_name)
    root = _root_at(scratch, target, backup_size)
    if recorded and (recorded.get("root_hash"), recorded.get("tree_size")) != \
            (root, backup_size):
        raise DrillFailed("the restored root differs from the backup's sidecar")
    result = _audit(scratch, target)
    prefix = _prefix_of_live(home, backup_size, root)
    orders, entries = _orders_after(home, backup_size)
    report.verified_after.update(tree_size=result.tree_size, root=result.root.hex(),
                                 backup_tree_size=backup_size, backup_root=root,
                                 prefix_of_live=True)
    report.rpo.update(drill=report.drill, backup=backup_name, orders_lost=orders,
                      entries_lost=entries)
    return (f"verify-audit ok ({result.tree_size} entries); {prefix}; a restore now would "
            f"lose {orders} acknowledged order(s), {entries} entries")


def _record(home: Home, report: DrillReport) -> None:
    from aurora.ledger import Entry

    with Ledger.open(home) as ledger:
        receipt = ledger.append(Entry(kind="drill", subject=report.drill_id,
                                      data=report.to_json()))
    report.ledger_seq = receipt.leaf_index


def _drill_id(kind: str) -> str:
    return f"DRILL-{kind.upper()}-{utc_now():%Y%m%dT%H%M%S%fZ}"


# --- the rollback drill ----------------------------------------------------------------------


def rollback_drill(home: Home, say: Say = lambda _: None, *, record: bool = True
                   ) -> DrillReport:
    """``aurora rollback`` (the real :func:`emergency_rollback`) against a scratch copy of the
    live ledger, then the seed's raw rollback commands, each result verified; records a
    ``drill`` entry."""
    report = DrillReport("rollback", _drill_id("rollback"))
    live = ledger_location(home)
    if not isinstance(live, Path):
        return _postgres_drill(home, live, report, backups_newest_first(
            home.backups_dir, PG_SUFFIX), say, record=record)
    with scratch_home(home, report.drill_id) as scratch:
        db = scratch_db(scratch)
        live_size = [0]

        def copy_live() -> str:
            snapshot(home.ledger_db, db)
            live_size[0] = _audit(scratch, db).tree_size
            return f"snapshot of the live ledger: {live_size[0]} entries"

        chosen: dict[str, Any] = {}

        def rollback() -> str:
            # the real thing, on the scratch home: its services (none), its database, the
            # live home's backups read in place, ledger-latest kept in the scratch home
            lines: list[str] = []
            result = emergency_rollback(scratch, db=db, backups=home.backups_dir,
                                        say=lines.append)
            if result.backup is None or result.tree_size is None:  # restored, or it raised
                raise DrillFailed("aurora rollback restored nothing")
            chosen.update(file=result.backup.name, tree_size=result.tree_size,
                          root=result.root, sha256=sha256_file(result.backup))
            return "aurora rollback: " + "; ".join(lines)

        def keep_latest() -> str:
            latest = scratch.backups_dir / LATEST
            if not latest.is_file() or sha256_file(latest) != chosen["sha256"]:
                raise DrillFailed(f"{LATEST} is not the restored backup")
            return f"{LATEST} is a copy of {chosen['file']}"

        def verify_after() -> str:
            if _root_at(scratch, db, chosen["tree_size"]) != chosen["root"]:
                raise DrillFailed("the restored ledger's root differs from the backup's")
            return _check_restored(home, scratch, db, chosen["file"], chosen["tree_size"],
                                   report)

        def seed_raw_commands() -> str:
            raw = scratch.root / "seed"
            (raw / "ops" / "backups").mkdir(parents=True)
            (raw / "ops" / "data").mkdir(parents=True)
            shutil.copy2(scratch.backups_dir / LATEST, raw / "ops" / "backups" / LATEST)
            snapshot(home.ledger_db, raw / "ops" / "data" / "remembrancer.db")
            _run(["gunzip", f"ops/backups/{LATEST}"], raw)
            _run(["sqlite3", "ops/data/remembrancer.db",
                  f".restore ops/backups/{LATEST.removesuffix('.gz')}"], raw)
            result = _audit(scratch, raw / "ops" / "data" / "remembrancer.db")
            if result.tree_size != chosen["tree_size"]:
                raise DrillFailed(f"the seed's .restore left {result.tree_size} entries, the "
                                  f"backup has {chosen['tree_size']}")
            return (f"gunzip + sqlite3 .restore: verify-audit ok, {result.tree_size} entries, "
                    f"root {result.root.hex()[:16]}…")

        if report.step("copy the live ledger", copy_live, say) and \
                report.step("aurora rollback (stop services, restore the newest verified "
                            "backup)", rollback, say):
            report.step(f"{LATEST} points at it", keep_latest, say)
            report.step("ledger verified afterwards", verify_after, say)
            report.step("the seed's gunzip + sqlite3 .restore", seed_raw_commands, say)
    if record:
        _record(home, report)
    return report


# --- the restore (data recovery) drill -------------------------------------------------------


def newest_daily(backups: Path, suffix: str = ".db.gz") -> Path | None:
    daily = sorted(backups.glob(DAILY_NAME.replace(".db.gz", suffix)))
    return daily[-1] if daily else None


def restore_drill(home: Home, say: Say = lambda _: None, *, backup_file: Path | None = None,
                  record: bool = True) -> DrillReport:
    """The seed's "Data Recovery" on a scratch copy: integrity_check of a daily backup, the
    audit_log table dumped into another database and verified, and a full restore of the
    backup verified; records a ``drill`` entry."""
    report = DrillReport("restore", _drill_id("restore"))
    live = ledger_location(home)
    if not isinstance(live, Path):
        daily = backup_file or newest_daily(home.backups_dir, PG_SUFFIX)
        return _postgres_drill(home, live, report, [daily] if daily else [], say,
                               record=record)
    source = backup_file or newest_daily(home.backups_dir)
    with scratch_home(home, report.drill_id) as scratch:
        facts: dict[str, Any] = {}

        def pick() -> str:
            if source is None or not source.is_file():
                raise DrillFailed(f"no daily backup (ledger-YYYYMMDD.db.gz) in {home.backups_dir}")
            copy = scratch.backups_dir / source.name
            copy_backup(source, copy)
            facts.update(copy=copy)
            return f"{source.name} ({read_sidecar(source).get('tree_size', '?')} entries)"

        def integrity() -> str:
            name = source.name.removesuffix(".gz") if source else ""
            gunzip_to(facts["copy"], scratch.backups_dir / name)
            try:
                out = _run(["sqlite3", f"ops/backups/{name}", "PRAGMA integrity_check;"],
                           scratch.root).stdout.decode().strip()
            except _Skipped as exc:
                # the backup is still checked, but the seed's command did not run
                integrity_check(scratch.backups_dir / name)
                raise _Skipped(f"{exc}; PRAGMA integrity_check through Python said ok") from None
            if not out.startswith("ok"):
                raise DrillFailed(f"PRAGMA integrity_check: {out[:200]}")
            return f"sqlite3 ops/backups/{name} \"PRAGMA integrity_check;\" → {out}"

        def dump_table() -> str:
            db = scratch_db(scratch)
            snapshot(home.ledger_db, db)
            dump = _run(["sqlite3", "ops/data/remembrancer.db", ".dump audit_log"],
                        scratch.root).stdout
            _run(["sqlite3", "ops/backups/audit_log_backup.db"], scratch.root, stdin=dump)
            with Ledger.open(scratch, db=db, readonly=True) as ledger:
                note = ledger.latest_checkpoint()
            result = _audit(scratch, scratch.backups_dir / "audit_log_backup.db",
                            (note, "the copied ledger's checkpoint") if note else None)
            return (".dump audit_log | sqlite3 ops/backups/audit_log_backup.db: verify-audit ok"
                    f" from payloads alone ({result.tree_size} entries)")

        def full_restore() -> str:
            target = scratch.data_dir / "restored.db"
            info = restore(scratch, facts["copy"], db=target)
            return "aurora ledger restore: " + _check_restored(home, scratch, target, info.file,
                                                               info.tree_size, report)

        if report.step("pick the daily backup", pick, say):
            report.step("PRAGMA integrity_check of the backup", integrity, say)
            report.step("restore one table (.dump audit_log)", dump_table, say)
            report.step("restore the backup and verify", full_restore, say)
    if record:
        _record(home, report)
    return report


# --- both drills with the ledger in PostgreSQL -----------------------------------------------


def _postgres_drill(home: Home, live: str, report: DrillReport, candidates: list[Path],
                    say: Say, *, record: bool) -> DrillReport:
    """The runbook's PostgreSQL restore on a scratch database of the live server: the first
    of ``candidates`` that verifies is restored into it (``aurora ledger restore``, which
    checks the dump in yet another scratch database against its seal first), then the
    result is checked like a SQLite restore. The scratch database is emptied afterwards."""
    from aurora.ledger.pgbackup import scratch_database

    with scratch_home(home, report.drill_id) as scratch, \
            scratch_database(live, "aurora_drill") as target:
        chosen: dict[str, Any] = {}

        def restore_newest() -> str:
            if not candidates:
                raise DrillFailed(f"no {'daily ' if report.drill == 'restore' else ''}"
                                  f"PostgreSQL backup (ledger-*{PG_SUFFIX}) in "
                                  f"{home.backups_dir}")
            skipped = []
            for candidate in candidates:
                try:
                    info = restore(scratch, candidate, db=target)
                except LedgerError as exc:
                    skipped.append(f"skipped {candidate.name}: {exc}")
                    continue
                chosen.update(file=info.file, tree_size=info.tree_size)
                return "; ".join([*skipped, f"restored {info.file} into an empty database: "
                                  f"{info.tree_size} entries"])
            raise DrillFailed("no backup verifies: " + "; ".join(skipped))

        def verify_after() -> str:
            return _check_restored(home, scratch, target, chosen["file"], chosen["tree_size"],
                                   report)

        if report.step("restore the newest verified backup into an empty database "
                       "(aurora ledger restore)", restore_newest, say):
            report.step("ledger verified afterwards", verify_after, say)
    if record:
        _record(home, report)
    return report
