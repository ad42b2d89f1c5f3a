"""The seed's emergency procedures: the real rollback, and drills of it and of data recovery.

``emergency_rollback`` is ``aurora rollback``: stop the services this home started (PID
files only, ``aurora.stack.down``), restore the ledger from the newest backup that verifies
(``aurora.ledger.backup.restore`` keeps the current database aside) and keep
``ops/backups/ledger-latest.db.gz`` a copy of it, as the seed's ``gunzip`` + ``.restore``
expect.

``rollback_drill`` and ``restore_drill`` run the procedures against a scratch copy under
``ops/data/soak-scratch/`` — never the live database — and check the ledger afterwards:
``verify-audit`` of the result, its root equal to the backup's signed root, and that root a
prefix of the live ledger (a consistency proof). The seed's raw commands (``gunzip``,
``sqlite3 ... ".restore ..."``, ``PRAGMA integrity_check``, ``.dump audit_log | sqlite3``) run
verbatim inside the scratch copy when the binaries exist. Each drill is recorded in the
ledger as a ``drill`` entry. The rollback drill also measures the RPO exposure: how many
acknowledged orders a restore from the newest backup would lose right now.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aurora.digests import sha256_file
from aurora.errors import AuroraError
from aurora.home import Home
from aurora.ledger import Ledger, LedgerError
from aurora.ledger.audit import AuditReport, audit
from aurora.ledger.backup import (
    LATEST,
    gunzip_to,
    integrity_check,
    restore,
    snapshot,
    verify_database_copy,
)
from aurora.ledger.errors import BackupError
from aurora.ledger.files import load_verifier, origin
from aurora.wire import format_rfc3339, utc_now

SCRATCH = "soak-scratch"
DAILY_NAME = "ledger-????????.db.gz"
Say = Callable[[str], None]


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
        return bool(self.steps) and all(s["ok"] is not False for s in self.steps)

    @property
    def failure(self) -> str | None:
        return next((f"{s['step']}: {s['detail']}" for s in self.steps if s["ok"] is False), None)

    def to_json(self) -> dict[str, Any]:
        return {"drill": self.drill, "drill_id": self.drill_id, "passed": self.passed,
                "failure": self.failure, "steps": self.steps,
                "verified_after": self.verified_after, "rpo": self.rpo,
                "at": format_rfc3339(utc_now())}

    def step(self, name: str, work: Callable[[], str], say: Say, *,
             optional: bool = False) -> bool:
        """Run one step; record ok/failed (or skipped: ok None) with its detail."""
        ok: bool | None
        try:
            detail, ok = work(), True
        except _Skipped as exc:
            detail, ok = str(exc), None
        except AuroraError as exc:
            detail, ok = str(exc), False
        except (OSError, sqlite3.Error, subprocess.SubprocessError) as exc:
            detail, ok = f"{type(exc).__name__}: {exc}", False
        self.steps.append({"step": name, "ok": ok, "detail": detail, "optional": optional})
        say(f"{'PASS' if ok else 'SKIP' if ok is None else 'FAIL'}  {name}: {detail}")
        return ok is not False


class _Skipped(Exception):
    """A step that cannot run here (a binary is missing): neither pass nor fail."""


# --- backups ---------------------------------------------------------------------------------


def sidecar(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.with_name(path.name + ".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def backups_newest_first(backups: Path) -> list[Path]:
    """Every ledger backup, the largest tree (then the newest file) first; the
    ``ledger-latest`` copy last, as a fallback only."""
    found = [p for p in backups.glob("ledger-*.db.gz") if p.is_file() and p.name != LATEST]

    def key(path: Path) -> tuple[int, float]:
        size = sidecar(path).get("tree_size")
        return (size if isinstance(size, int) else -1, path.stat().st_mtime)

    ordered = sorted(found, key=key, reverse=True)
    latest = backups / LATEST
    return ordered + ([latest] if latest.is_file() else [])


def check_backup(home: Home, path: Path, workdir: Path) -> AuditReport:
    """What ``restore`` checks before restoring, without restoring: the sha256 its sidecar
    records, ``PRAGMA integrity_check`` and a full audit against its own signed checkpoint."""
    expected = sidecar(path).get("sha256")
    if expected is not None and expected != sha256_file(path):
        raise LedgerError(f"{path.name} does not match the sha256 in its sidecar")
    raw = workdir / (path.name.removesuffix(".gz") + ".check")
    gunzip_to(path, raw)
    try:
        return verify_database_copy(raw, home, require_full_signature=False)
    finally:
        raw.unlink(missing_ok=True)


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


def _audit(home: Home, db: Path, note: tuple[str, str] | None = None) -> AuditReport:
    return audit(db, [load_verifier(home)], origin=origin(home), checkpoint_note=note)


def _root_at(home: Home, db: Path, size: int) -> str:
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


def _orders_after(home: Home, db: Path, size: int) -> tuple[int, int]:
    """(acknowledged orders, all entries) in ``db`` at or after leaf ``size``."""
    with Ledger.open(home, db=db, readonly=True) as ledger:
        kinds = [row.kind for row in ledger.scan(start_seq=size)]
    return kinds.count("order"), len(kinds)


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
    """``aurora rollback`` against a scratch copy of the live ledger, then the seed's raw
    rollback commands, each result verified; records a ``drill`` entry."""
    report = DrillReport("rollback", _drill_id("rollback"))
    with scratch_home(home, report.drill_id) as scratch:
        db = scratch_db(scratch)
        live_size = [0]

        def copy_live() -> str:
            snapshot(home.ledger_db, db)
            live_size[0] = _audit(scratch, db).tree_size
            return f"snapshot of the live ledger: {live_size[0]} entries"

        chosen: dict[str, Any] = {}

        def stop_services() -> str:
            from aurora.stack import down

            stopped = [name for name, was in down(scratch) if was]
            return ("stopped " + ", ".join(stopped)) if stopped else \
                "no service runs from the scratch home (the live stack is not touched)"

        def restore_newest() -> str:
            tried = []
            for candidate in backups_newest_first(home.backups_dir):
                copy = scratch.backups_dir / candidate.name
                shutil.copy2(candidate, copy)
                with contextlib.suppress(FileNotFoundError):
                    shutil.copy2(candidate.with_name(candidate.name + ".json"),
                                 copy.with_name(copy.name + ".json"))
                try:
                    info = restore(scratch, copy, db=db)
                except LedgerError as exc:
                    tried.append(f"{candidate.name}: {exc}")
                    continue
                chosen.update(file=candidate.name, path=copy, tree_size=info.tree_size,
                              root=info.root_hash, sha256=info.sha256)
                return (f"restored {candidate.name} ({info.tree_size} entries); skipped "
                        f"{len(tried)} that did not verify" + (f": {tried[0]}" if tried else ""))
            raise DrillFailed("no backup verifies" + (f" ({tried[0]})" if tried else ""))

        def keep_latest() -> str:
            path: Path = chosen["path"]
            latest = scratch.backups_dir / LATEST
            if path != latest:
                shutil.copy2(path, latest)
            if sha256_file(latest) != chosen["sha256"]:
                raise DrillFailed(f"{LATEST} is not the restored backup")
            return f"{LATEST} is a copy of {chosen['file']}"

        def verify_after() -> str:
            result = _audit(scratch, db)
            root = _root_at(scratch, db, chosen["tree_size"])
            if root != chosen["root"]:
                raise DrillFailed("the restored ledger's root differs from the backup's")
            prefix = _prefix_of_live(home, chosen["tree_size"], root)
            orders, entries = _orders_after(home, home.ledger_db, chosen["tree_size"])
            report.verified_after.update(tree_size=result.tree_size, root=result.root.hex(),
                                         backup_tree_size=chosen["tree_size"],
                                         backup_root=root, prefix_of_live=True)
            report.rpo.update(drill="rollback", backup=chosen["file"],
                              orders_lost=orders, entries_lost=entries)
            return (f"verify-audit ok ({result.tree_size} entries); {prefix}; a restore now "
                    f"would lose {orders} acknowledged order(s), {entries} entries")

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
                report.step("stop services (PID files)", stop_services, say) and \
                report.step("restore the newest verified backup", restore_newest, say):
            report.step(f"{LATEST} points at it", keep_latest, say)
            report.step("ledger verified afterwards", verify_after, say)
            report.step("the seed's gunzip + sqlite3 .restore", seed_raw_commands, say,
                        optional=True)
    if record:
        _record(home, report)
    return report


# --- the restore (data recovery) drill -------------------------------------------------------


def newest_daily(backups: Path) -> Path | None:
    daily = sorted(backups.glob(DAILY_NAME))
    return daily[-1] if daily else None


def restore_drill(home: Home, say: Say = lambda _: None, *, backup_file: Path | None = None,
                  record: bool = True) -> DrillReport:
    """The seed's "Data Recovery" on a scratch copy: integrity_check of a daily backup, the
    audit_log table dumped into another database and verified, and a full restore of the
    backup verified; records a ``drill`` entry."""
    report = DrillReport("restore", _drill_id("restore"))
    source = backup_file or newest_daily(home.backups_dir)
    with scratch_home(home, report.drill_id) as scratch:
        facts: dict[str, Any] = {}

        def pick() -> str:
            if source is None or not source.is_file():
                raise DrillFailed(f"no daily backup (ledger-YYYYMMDD.db.gz) in {home.backups_dir}")
            copy = scratch.backups_dir / source.name
            shutil.copy2(source, copy)
            with contextlib.suppress(FileNotFoundError):
                shutil.copy2(source.with_name(source.name + ".json"),
                             copy.with_name(copy.name + ".json"))
            facts.update(copy=copy, sidecar=sidecar(source))
            return f"{source.name} ({sidecar(source).get('tree_size', '?')} entries)"

        def integrity() -> str:
            name = source.name.removesuffix(".gz") if source else ""
            gunzip_to(facts["copy"], scratch.backups_dir / name)
            try:
                out = _run(["sqlite3", f"ops/backups/{name}", "PRAGMA integrity_check;"],
                           scratch.root).stdout.decode().strip()
            except _Skipped:
                try:
                    integrity_check(scratch.backups_dir / name)
                    out = "ok"
                except BackupError as exc:
                    out = str(exc)
                out += " (Python sqlite3: the sqlite3 CLI is not installed)"
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
            recorded = facts["sidecar"]
            root = _root_at(scratch, target, info.tree_size)
            if recorded and (recorded.get("root_hash"), recorded.get("tree_size")) != \
                    (root, info.tree_size):
                raise DrillFailed("the restored root differs from the backup's sidecar")
            result = _audit(scratch, target)
            prefix = _prefix_of_live(home, info.tree_size, root)
            orders, entries = _orders_after(home, home.ledger_db, info.tree_size)
            report.verified_after.update(tree_size=result.tree_size, root=result.root.hex(),
                                         backup_tree_size=info.tree_size, backup_root=root,
                                         prefix_of_live=True)
            report.rpo.update(drill="restore", backup=info.file, orders_lost=orders,
                              entries_lost=entries)
            return f"aurora ledger restore: verify-audit ok ({result.tree_size} entries); {prefix}"

        if report.step("pick the daily backup", pick, say):
            report.step("PRAGMA integrity_check of the backup", integrity, say)
            report.step("restore one table (.dump audit_log)", dump_table, say, optional=True)
            report.step("restore the backup and verify", full_restore, say)
    if record:
        _record(home, report)
    return report


# --- the real thing --------------------------------------------------------------------------


@dataclass
class RollbackResult:
    stopped: list[str]
    backup: Path | None
    skipped: list[str]
    moved_aside: list[str]
    tree_size: int | None
    root: str | None
    dry_run: bool


def emergency_rollback(home: Home, *, dry_run: bool = False, say: Say = print
                       ) -> RollbackResult:
    """Stop the services, restore the newest verifying backup, keep ledger-latest on it."""
    from aurora.stack import down

    stopped: list[str] = []
    if not dry_run:
        stopped = [name for name, was in down(home) if was]
        say("stopped " + (", ".join(stopped) if stopped else "nothing (no service was running)"))
    skipped: list[str] = []
    work = home.data_dir / SCRATCH
    work.mkdir(parents=True, exist_ok=True)
    for candidate in backups_newest_first(home.backups_dir):
        try:
            if dry_run:
                report = check_backup(home, candidate, work)
                say(f"would restore {candidate} ({report.tree_size} entries, verifies)")
                return RollbackResult([], candidate, skipped, [], report.tree_size,
                                      report.root.hex(), True)
            info = restore(home, candidate)
        except LedgerError as exc:
            skipped.append(f"{candidate.name}: {exc}")
            say(f"skipped {candidate.name}: {exc}")
            continue
        latest = home.backups_dir / LATEST
        if candidate != latest and (not latest.exists() or
                                    sha256_file(latest) != sha256_file(candidate)):
            shutil.copy2(candidate, latest)
            with contextlib.suppress(FileNotFoundError):
                shutil.copy2(candidate.with_name(candidate.name + ".json"),
                             latest.with_name(LATEST + ".json"))
        say(f"restored {candidate.name}: {info.tree_size} entries, root {info.root_hash}")
        for path in info.moved_aside:
            say(f"kept previous: {path}")
        return RollbackResult(stopped, candidate, skipped, info.moved_aside, info.tree_size,
                              info.root_hash, False)
    raise LedgerError(f"no backup in {home.backups_dir} verifies; nothing was restored"
                      + (f" (first problem: {skipped[0]})" if skipped else ""), exit_code=2)
