"""Online backups, their verification, and restore (RPO <= 15 min with ``--every 15m``).

A backup is a consistent snapshot taken with SQLite's backup API while writers
carry on (WAL), switched to a self-contained rollback-journal file, sealed with
a signed checkpoint at its exact size, verified (``PRAGMA integrity_check`` plus
a full audit whose root must equal the copy's own signed checkpoint), gzipped to
``ops/backups/ledger-YYYYMMDD-HHMMSS.db.gz`` and described in a ``.json`` sidecar
and ``ops/backups/MANIFEST.jsonl``. ``ledger-latest.db.gz`` is a plain copy of
the newest verified backup (a copy, not a link: ``gunzip`` refuses links and
deletes what it unpacks). Each backup is then appended to the ledger as a
``backup`` entry.

Restore never deletes: the current database (and its -wal/-shm) is renamed to
``<db>.before-restore-<time>`` first.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import shutil
import tempfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aurora.digests import sha256_file
from aurora.durable import atomic_copy, atomic_write, fsync_dir, sidecar
from aurora.errors import AuroraError
from aurora.home import Home
from aurora.ledger.audit import AuditReport, audit
from aurora.ledger.entry import Entry
from aurora.ledger.errors import BackupError, LedgerError, TamperedError
from aurora.ledger.files import (
    load_signer,
    load_verifier,
    move_aside,
    now_rfc3339,
    origin,
    restore_lock,
    write_checkpoint_file,
)
from aurora.ledger.ledger import Ledger
from aurora.ledger.note import Checkpoint, Signer, sign_checkpoint
from aurora.ledger.sqlitestore import SqliteStore, fold_wal
from aurora.ledger.storage import Location, checkpoint_path, describe, ledger_location, open_store
from aurora.wire import utc_now

LATEST = "ledger-latest.db.gz"
MANIFEST = "MANIFEST.jsonl"
_NAME = re.compile(r"[A-Za-z0-9._-]+\.db\.gz")
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class BackupInfo:
    """One verified backup, as written to its sidecar and the manifest."""

    file: str
    sha256: str
    bytes: int
    tree_size: int
    root_hash: str
    checkpoint_size: int
    created: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def sidecar_path(backup_file: Path) -> Path:
    """Where a backup's description (its :class:`BackupInfo`) is kept: ``<file>.json``."""
    return sidecar(backup_file, ".json")


def seal_path(dump: Path) -> Path:
    """Where a PostgreSQL dump's seal (the checkpoint signed at its exact size) is kept:
    ``<file>.checkpoint``."""
    return dump.with_name(f"{dump.name}.checkpoint")


def write_sidecar(backup_file: Path, info: BackupInfo) -> None:
    atomic_write(sidecar_path(backup_file),
                 (json.dumps(info.to_json(), indent=2) + "\n").encode())


def read_sidecar(backup_file: Path) -> dict[str, Any]:
    """A backup's recorded description; empty when it has none (or an unreadable one)."""
    try:
        value = json.loads(sidecar_path(backup_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def copy_backup(source: Path, target: Path) -> None:
    """``target`` becomes a copy of the backup ``source``, with its sidecar when it has one."""
    shutil.copy2(source, target)
    with contextlib.suppress(FileNotFoundError):
        shutil.copy2(sidecar_path(source), sidecar_path(target))


def integrity_check(location: Location) -> str:
    """The engine's own check of a ledger database; BackupError unless it finds nothing.

    SQLite: ``PRAGMA integrity_check``. PostgreSQL: amcheck (``verify_heapam`` and
    ``bt_index_check``). Returns what was run, for reports.
    """
    store = open_store(location, readonly=True)
    try:
        problems = store.integrity_check()
    finally:
        store.close()
    what = "PRAGMA integrity_check" if isinstance(location, Path) else "amcheck"
    if problems:
        raise BackupError(f"{describe(location)}: {what} failed: {'; '.join(problems[:3])}")
    return what


def snapshot(source: Path, target: Path) -> None:
    """A consistent copy of a live WAL database, as one self-contained file."""
    src = SqliteStore(source, readonly=True)
    try:
        src.copy_to(target)
    finally:
        src.close()


def _seal(path: Path, signer: Signer) -> None:
    """Add a signed checkpoint at the copy's exact size (writers may have added entries
    between the checkpoint taken before the snapshot and the snapshot itself)."""
    store = SqliteStore(path, readonly=False)
    try:
        with store.transaction(write=True):
            frontier = store.head()
            root = frontier.root()
            note = sign_checkpoint(Checkpoint(signer.name, frontier.size, root), signer)
            store.insert_checkpoint(frontier.size, root, now_rfc3339(), note)
        store.make_self_contained()
    finally:
        store.close()


def verify_database_copy(path: Path, home: Home, *, require_full_signature: bool) -> AuditReport:
    """integrity_check + full audit; with ``require_full_signature`` the copy's own
    signed checkpoint must cover every entry (true of backups this module makes)."""
    integrity_check(path)
    try:
        report = audit(path, [load_verifier(home)], origin=origin(home))
    except TamperedError as exc:
        raise BackupError(f"{path.name} fails verification: {exc}") from None
    if report.tree_size and report.latest_signed_size is None:
        raise BackupError(f"{path.name} holds no signed checkpoint")
    if require_full_signature and report.latest_signed_size != report.tree_size:
        raise BackupError(f"{path.name}: its signed checkpoint covers "
                          f"{report.latest_signed_size} of {report.tree_size} entries")
    return report


def verify_packed_copy(path: Path, home: Home, workdir: Path, *,
                       require_full_signature: bool) -> AuditReport:
    """``verify_database_copy`` of a ``.db.gz`` backup, unpacked into ``workdir`` (removed
    afterwards)."""
    raw = workdir / (path.name.removesuffix(".gz") + ".check")
    gunzip_to(path, raw)
    try:
        return verify_database_copy(raw, home, require_full_signature=require_full_signature)
    finally:
        raw.unlink(missing_ok=True)


def _gzip(source: Path, target: Path) -> None:
    with open(source, "rb") as src, open(target, "wb") as raw:
        with gzip.GzipFile(filename=source.name, mode="wb", fileobj=raw, compresslevel=6,
                           mtime=0) as gz:
            shutil.copyfileobj(src, gz, 1 << 20)
        raw.flush()
        os.fsync(raw.fileno())


# A ledger compresses a few times (its hashes are random bytes); a gzip bomb compresses
# up to ~1000 times. Decompression stops at MAX_EXPANSION × the file's size (at least
# MIN_EXPANDED_BYTES), and in any case before the target's filesystem would keep less than
# FREE_RESERVE_BYTES free, so a bomb is refused early and never fills the ledger's disk.
MAX_EXPANSION = 50
MIN_EXPANDED_BYTES = 64 * 1024 * 1024
FREE_RESERVE_BYTES = 256 * 1024 * 1024


def expansion_limit(source: Path, target_dir: Path) -> int:
    """How many bytes decompressing ``source`` into ``target_dir`` may write."""
    ceiling = max(MIN_EXPANDED_BYTES, MAX_EXPANSION * source.stat().st_size)
    free = shutil.disk_usage(target_dir).free - FREE_RESERVE_BYTES
    return max(0, min(ceiling, free))


def gunzip_to(source: Path, target: Path, *, limit: int | None = None) -> None:
    """Decompress a backup, streaming and bounded by ``limit`` (default: expansion_limit).

    A truncated or corrupt file, or one that expands past the limit, is a BackupError;
    the partial output is removed.
    """
    if limit is None:
        limit = expansion_limit(source, target.parent)
    try:
        with open(source, "rb") as fh:
            if fh.read(2) != _GZIP_MAGIC:
                raise BackupError(f"{source} is not a gzip file")
        with gzip.open(source, "rb") as gz, open(target, "wb") as out:
            written = 0
            while chunk := gz.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    raise BackupError(
                        f"{source} expands past {limit // (1024 * 1024)} MiB "
                        f"({MAX_EXPANSION}x its size, or the free space of {target.parent}): "
                        "not a ledger backup (a gzip bomb?); nothing was restored")
                out.write(chunk)
    except (EOFError, OSError, zlib.error) as exc:
        target.unlink(missing_ok=True)
        if isinstance(exc, BackupError):
            raise
        raise BackupError(f"{source} is truncated or corrupt ({exc})") from None
    except BackupError:
        target.unlink(missing_ok=True)
        raise


def append_manifest(out_dir: Path, info: BackupInfo) -> None:
    with open(out_dir / MANIFEST, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(info.to_json(), sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def verify_backup(home: Home, path: Path) -> AuditReport:
    """Audit a backup file without restoring it, whichever store wrote it: a SQLite copy
    (``.db.gz``) unpacked beside the home's data, or a PostgreSQL dump (``.sql.gz``) loaded
    into a scratch database of the home's server; either must be fully covered by its own
    signed checkpoint (the dump's seal, ``<file>.checkpoint``)."""
    from aurora.ledger.pgbackup import SUFFIX, verify_dump

    if path.name.endswith(SUFFIX):
        location = ledger_location(home)
        if isinstance(location, Path):
            raise BackupError(f"{path.name} is a PostgreSQL dump: verifying it needs a "
                              "PostgreSQL database_url (a server to load it into)")
        seal_file = seal_path(path)
        if not seal_file.is_file():
            raise BackupError(f"{path.name} has no seal ({seal_file.name})")
        return verify_dump(path, location, home, seal_file.read_text(encoding="utf-8"))[0]
    with tempfile.TemporaryDirectory(prefix=".verify-", dir=home.data_dir) as tmp:
        return verify_packed_copy(path, home, Path(tmp), require_full_signature=True)


def backup_suffix(home: Home, db: str | os.PathLike[str] | None = None) -> str:
    """How this home's ledger backups end: ``.db.gz`` (a copy of the SQLite file) or
    ``.sql.gz`` (a dump of the PostgreSQL tables)."""
    if isinstance(ledger_location(home, db), Path):
        return ".db.gz"
    from aurora.ledger.pgbackup import SUFFIX

    return SUFFIX


def backup(home: Home, *, db: str | os.PathLike[str] | None = None,
           out_dir: Path | None = None, name: str | None = None) -> BackupInfo:
    """Take, verify and record one backup; return what the manifest says about it."""
    source = ledger_location(home, db)
    if not isinstance(source, Path):
        from aurora.ledger.pgbackup import backup as pg_backup

        return pg_backup(home, source, db=db, out_dir=out_dir, name=name)
    out = out_dir or home.backups_dir
    created = utc_now()
    filename = name or f"ledger-{created:%Y%m%d-%H%M%S}.db.gz"
    if not _NAME.fullmatch(filename) or filename == LATEST:
        raise BackupError(f"backup name {filename!r} must be a plain file name ending in "
                          f".db.gz (and not {LATEST})")
    signer = load_signer(home)
    out.mkdir(parents=True, exist_ok=True)
    with Ledger.open(home, db=db) as ledger:
        ledger.checkpoint()
        with tempfile.TemporaryDirectory(prefix=".backup-", dir=out) as tmp:
            raw = Path(tmp) / filename.removesuffix(".gz")
            snapshot(source, raw)
            _seal(raw, signer)
            report = verify_database_copy(raw, home, require_full_signature=True)
            packed = Path(tmp) / filename
            _gzip(raw, packed)
            return publish(ledger, packed, out, report, latest=LATEST)


def publish(ledger: Ledger, packed: Path, out: Path, report: AuditReport, *, latest: str,
            seal: str | None = None) -> BackupInfo:
    """Put a verified backup in place and record it (either store): the file (and the
    dump's seal) in ``out``, its sidecar, the manifest line, the ``latest`` copy with its
    sidecar (and seal), then the ``backup`` entry in the ledger."""
    info = BackupInfo(packed.name, sha256_file(packed), packed.stat().st_size,
                      report.tree_size, report.root.hex(), report.latest_signed_size or 0,
                      now_rfc3339())
    target = out / packed.name
    move_aside(target, "previous")
    if seal is not None:
        atomic_write(seal_path(target), seal.encode())
    os.replace(packed, target)
    fsync_dir(out)
    write_sidecar(target, info)
    append_manifest(out, info)
    atomic_copy(target, out / latest)
    if seal is not None:
        atomic_copy(seal_path(target), seal_path(out / latest))
    write_sidecar(out / latest, info)
    ledger.append(Entry(kind="backup", data={
        "file": info.file, "sha256": info.sha256, "bytes": info.bytes,
        "tree_size": info.tree_size, "root_hash": info.root_hash}))
    return info


def _expected_sha256(path: Path) -> str | None:
    """The sha256 the backup's sidecar records, if it has one."""
    value = read_sidecar(path).get("sha256")
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class RestoreInfo:
    file: str
    sha256: str
    tree_size: int
    root_hash: str
    moved_aside: list[str]
    warnings: list[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _move_database_aside(db: Path, stamp: str) -> list[str]:
    """Rename db, -wal and -shm to ``<db>.before-restore-<stamp>[-wal|-shm]`` (a pair
    SQLite still opens together), after folding the WAL in when the file is readable."""
    if db.exists():
        fold_wal(db)
    moved = []
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{db}{suffix}")
        if path.exists():
            target = Path(f"{db}.before-restore-{stamp}{suffix}")
            os.replace(path, target)
            moved.append(str(target))
    fsync_dir(db.parent)
    return moved


def _stop_hint(home: Home) -> str:
    """What the operator must stop before a restore: the stack's services that run."""
    from aurora.procs import running
    from aurora.stack import ALL_SERVICES

    names = [name for name in ALL_SERVICES if running(home, name) is not None]
    if names:
        return (f"stop {', '.join(names)} first (`aurora down`), then restore and "
                "`aurora up`; nothing was restored")
    return ("stop every process using it (bridge, incident receiver, soak, `aurora ledger "
            "backup --every`) first; nothing was restored")


def restore(home: Home, file: Path, *, db: str | os.PathLike[str] | None = None
            ) -> RestoreInfo:
    """Verify a backup (``.db.gz`` or ``.db``), set the current database aside, restore it."""
    location = ledger_location(home, db)
    if not file.is_file():
        raise BackupError(f"no backup file at {file}")
    sha = sha256_file(file)
    expected = _expected_sha256(file)
    if expected is not None and expected != sha:
        raise BackupError(f"{file} does not match the sha256 in its manifest (truncated or "
                          "altered); nothing was restored")
    if not isinstance(location, Path):
        from aurora.ledger.pgbackup import restore as pg_restore

        return pg_restore(home, file, location, sha, db=db)
    target = location
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".restore-", dir=target.parent) as tmp:
        raw = Path(tmp) / "restored.db"
        if file.name.endswith(".gz"):
            gunzip_to(file, raw)
        else:
            shutil.copyfile(file, raw)
        try:
            report = verify_database_copy(raw, home, require_full_signature=False)
        except LedgerError as exc:
            raise BackupError(f"refusing to restore {file}: {exc}") from None
        stamp = utc_now().strftime("%Y%m%dT%H%M%S%fZ")
        # No writer may hold the old file open across the swap: it would go on
        # acknowledging entries into the file moved aside. Writers hold this lock shared.
        with restore_lock(target, _stop_hint(home)):
            moved = _move_database_aside(target, stamp)
            with open(raw, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(raw, target)
            fsync_dir(target.parent)
    return finish_restore(home, target, db=db, file=file, sha=sha, report=report, moved=moved,
                          stamp=stamp)


def finish_restore(home: Home, location: Location, *, db: str | os.PathLike[str] | None,
                   file: Path, sha: str, report: AuditReport, moved: list[str],
                   stamp: str | None = None) -> RestoreInfo:
    """After the swap (either store): audit what is now the ledger, set the old checkpoint
    file aside for the restored one, and record the restore in the ledger itself."""
    audit(location, [load_verifier(home)], origin=origin(home))
    note_file = checkpoint_path(home, db)
    aside = move_aside(note_file, "before-restore", stamp)
    if aside is not None:
        moved.append(str(aside))
    with Ledger.open(home, db=db, readonly=True) as restored:
        latest = restored.latest_checkpoint()
    if latest is not None:
        write_checkpoint_file(note_file, latest, report.latest_signed_size or 0)
    warnings = list(report.warnings)
    try:
        with Ledger.open(home, db=db) as ledger:
            ledger.append(Entry(kind="restore", data={
                "file": file.name, "sha256": sha, "tree_size": report.tree_size,
                "root_hash": report.root.hex(), "moved_aside": moved}))
    except AuroraError as exc:  # e.g. no private key here: the restore itself stands
        warnings.append(f"restored, but the restore entry was not appended: {exc}")
    return RestoreInfo(file.name, sha, report.tree_size, report.root.hex(), moved, warnings)
