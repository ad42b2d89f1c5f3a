"""``aurora rollback``: the seed's emergency rollback, next to backup and restore.

``emergency_rollback`` stops the services this home started (PID files only,
``aurora.stack.down``), restores the ledger from the newest backup that verifies
(``aurora.ledger.backup.restore`` keeps the current database aside) and keeps
``ops/backups/ledger-latest.db.gz`` a copy of it, as the seed's ``gunzip`` + ``.restore``
expect. The rollback drill (:mod:`aurora.drills.procedures`) runs this same function
against a scratch home.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aurora.digests import sha256_file
from aurora.home import Home
from aurora.ledger.audit import AuditReport
from aurora.ledger.backup import LATEST, copy_backup, read_sidecar, restore, verify_packed_copy
from aurora.ledger.errors import BackupError, LedgerError
from aurora.ledger.storage import describe, ledger_location

SCRATCH = "soak-scratch"
Say = Callable[[str], None]


def backups_newest_first(backups: Path, suffix: str = ".db.gz") -> list[Path]:
    """Every ledger backup (of SQLite, or ``suffix=".sql.gz"``: PostgreSQL dumps), the
    largest tree (then the newest file) first; the ``ledger-latest`` copy last, as a
    fallback only."""
    latest_name = LATEST.replace(".db.gz", suffix)
    found = [p for p in backups.glob(f"ledger-*{suffix}")
             if p.is_file() and p.name != latest_name]

    def key(path: Path) -> tuple[int, float]:
        size = read_sidecar(path).get("tree_size")
        return (size if isinstance(size, int) else -1, path.stat().st_mtime)

    ordered = sorted(found, key=key, reverse=True)
    latest = backups / latest_name
    return ordered + ([latest] if latest.is_file() else [])


def check_backup(home: Home, path: Path, workdir: Path) -> AuditReport:
    """What ``restore`` checks before restoring, without restoring: the sha256 its sidecar
    records, ``PRAGMA integrity_check`` and a full audit against its own signed checkpoint."""
    expected = read_sidecar(path).get("sha256")
    if expected is not None and expected != sha256_file(path):
        raise LedgerError(f"{path.name} does not match the sha256 in its sidecar")
    return verify_packed_copy(path, home, workdir, require_full_signature=False)


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


def emergency_rollback(home: Home, *, dry_run: bool = False, say: Say = print,
                       db: Path | None = None, backups: Path | None = None) -> RollbackResult:
    """Stop the services, restore the newest verifying backup, keep ledger-latest on it.

    ``db`` is the database to restore (default: the home's), ``backups`` where the backups
    are read (default: the home's ``ops/backups``); ``ledger-latest`` is always kept in the
    home's. The rollback drill passes a scratch home and database and the live backups.
    """
    from aurora.stack import down

    location = ledger_location(home, db)
    if not isinstance(location, Path):  # checked before anything is stopped
        raise BackupError(f"aurora rollback restores a SQLite ledger; the ledger is in "
                          f"PostgreSQL ({describe(location)}): restore a .sql.gz backup into "
                          "an empty database instead (docs/RUNBOOK.md, PostgreSQL ledger)")
    stopped: list[str] = []
    if not dry_run:
        stopped = [name for name, was in down(home) if was]
        say("stopped " + (", ".join(stopped) if stopped else "nothing (no service was running)"))
    skipped: list[str] = []
    work = home.data_dir / SCRATCH
    work.mkdir(parents=True, exist_ok=True)
    source = backups or home.backups_dir
    for candidate in backups_newest_first(source):
        try:
            if dry_run:
                report = check_backup(home, candidate, work)
                say(f"would restore {candidate} ({report.tree_size} entries, verifies)")
                return RollbackResult([], candidate, skipped, [], report.tree_size,
                                      report.root.hex(), True)
            info = restore(home, candidate, db=db)
        except LedgerError as exc:
            skipped.append(f"{candidate.name}: {exc}")
            say(f"skipped {candidate.name}: {exc}")
            continue
        latest = home.backups_dir / LATEST
        if candidate != latest and (not latest.exists() or
                                    sha256_file(latest) != sha256_file(candidate)):
            copy_backup(candidate, latest)
        say(f"restored {candidate.name}: {info.tree_size} entries, root {info.root_hash}")
        for path in info.moved_aside:
            say(f"kept previous: {path}")
        return RollbackResult(stopped, candidate, skipped, info.moved_aside, info.tree_size,
                              info.root_hash, False)
    raise LedgerError(f"no backup in {source} verifies; nothing was restored"
                      + (f" (first problem: {skipped[0]})" if skipped else ""), exit_code=2)
