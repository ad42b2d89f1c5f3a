"""Backups and restore of a ledger in PostgreSQL.

A backup is ``pg_dump --data-only`` of the three ledger tables: one consistent
snapshot (pg_dump reads in one repeatable-read transaction) while replicas keep
appending. Before it counts, it is restored into a scratch database on the same
server (one, reused: :func:`scratch_database`), audited there (every leaf, stored hash
and stored checkpoint recomputed), and sealed: a checkpoint signed at the dump's exact
size is written beside it as ``<file>.checkpoint``, and the audit must reach it. The dump
is gzipped to
``ops/backups/ledger-YYYYMMDD-HHMMSS.sql.gz`` with the same ``.json`` sidecar,
``MANIFEST.jsonl`` line and ``backup`` ledger entry as SQLite backups.

Restore verifies the same way before touching anything, and only into a database
that holds no ledger (PostgreSQL's tables are append-only; nothing is deleted):
create an empty database, point ``database_url`` at it, restore.

Streaming replication to a standby (see docs/RUNBOOK.md) brings the RPO to zero;
these backups guard against what replication copies faithfully (an operator's
mistake, a compromised primary).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from aurora.errors import AuroraError
from aurora.home import Home
from aurora.ledger.audit import AuditReport, audit
from aurora.ledger.backup import (
    LATEST,
    BackupInfo,
    RestoreInfo,
    finish_restore,
    publish,
    seal_path,
)
from aurora.ledger.errors import BackupError, LedgerError, TamperedError
from aurora.ledger.files import (
    load_signer,
    load_verifier,
    origin,
)
from aurora.ledger.note import Checkpoint, Signer, sign_checkpoint
from aurora.ledger.storage import describe, open_store
from aurora.wire import utc_now

TABLES = ("audit_log", "merkle_hashes", "checkpoints")
SUFFIX = ".sql.gz"
TIMEOUT_S = 3600


def _tool(name: str) -> str:
    from aurora.db.cluster import bindir

    return str(bindir() / name)


def _run(argv: list[str], *, stdin: int | None = None, what: str) -> bytes:
    try:
        out = subprocess.run(argv, stdin=stdin, capture_output=True, timeout=TIMEOUT_S,
                             check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BackupError(f"{what}: {exc}") from None
    if out.returncode != 0:
        last = (out.stderr.decode(errors="replace").strip().splitlines() or ["failed"])[-1]
        raise BackupError(f"{what}: {last}")
    return out.stdout


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


SCRATCH_DATABASE = "aurora_verify"
# marks a scratch database as Aurora's, so a database of that name holding anything else
# is refused, never emptied
SCRATCH_MARK = "aurora: scratch database (verifying backups, drills), emptied on every use"


@contextlib.contextmanager
def scratch_database(url: str, name: str = SCRATCH_DATABASE) -> Iterator[str]:
    """A scratch database ``name`` on the server of ``url``, empty; one user at a time.

    Made once and emptied (its ``public`` schema dropped) for each use, not made and
    dropped per backup: every DROP DATABASE makes the server take an immediate checkpoint
    and every CREATE DATABASE copies a template through the WAL, both beside the
    replicas' appends, and the soak backs up every 15 minutes of its clock. Verifications
    take turns by an advisory lock held on a session of its own, released if the process
    dies (so a user of one scratch database that verifies a dump needs another name).
    """
    from aurora.db.postgres import connect, errors

    scratch = _with_database(url, name)
    with connect(url) as conn, errors(url):
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (name,)).fetchone()
        if exists is None:
            import psycopg

            with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # made beside us
                conn.execute(f"CREATE DATABASE {name} TEMPLATE template0")
    with connect(scratch) as turn, errors(scratch):
        turn.execute("SELECT pg_advisory_lock(hashtext(%s))", (name,))
        (mark,) = turn.execute("SELECT shobj_description(oid, 'pg_database') FROM "
                               "pg_database WHERE datname = current_database()").fetchone() \
            or (None,)
        if mark != SCRATCH_MARK:
            (tables,) = turn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = "
                                     "'public'").fetchone() or (0,)
            # unmarked and empty: ours, made by a verification that died before marking it
            if mark is not None or tables:
                raise BackupError(f"database {name} on {describe(url)} is not "
                                  "Aurora's scratch database; rename it (Aurora uses the name)")
            turn.execute(f"COMMENT ON DATABASE {name} IS '{SCRATCH_MARK}'")
        _empty(scratch)
        try:
            yield scratch
        finally:
            with contextlib.suppress(AuroraError):
                _empty(scratch)


def _empty(scratch: str) -> None:
    from aurora.db.postgres import connect, errors

    with connect(scratch, autocommit=False) as conn, errors(scratch):
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
        conn.commit()


def load_dump(dump_gz: Path, url: str) -> None:
    """Load a data-only dump into ``url``, which must hold the schema and no ledger."""
    store = open_store(url, readonly=False)
    try:
        store.create_schema()
        if store.size() or store.checkpoint_table():
            raise BackupError(f"{describe(url)} already holds a ledger ({store.size()} entries)"
                              ": restore into an empty database; nothing was changed")
    finally:
        store.close()
    with tempfile.TemporaryDirectory(prefix="aurora-restore-") as tmp:
        plain = Path(tmp) / "dump.sql"
        try:
            with gzip.open(dump_gz, "rb") as src, open(plain, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        except (EOFError, OSError) as exc:
            raise BackupError(f"{dump_gz} is truncated or corrupt ({exc})") from None
        with open(plain, "rb") as fh:
            _run([_tool("psql"), "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1",
                  "--single-transaction", "-d", url, "-f", "-"], stdin=fh.fileno(),
                 what=f"loading {dump_gz.name}")
    from aurora.ledger.pgstore import PgStore

    loaded = PgStore(url, readonly=False)
    try:
        loaded.sync_tree_size()
    finally:
        loaded.close()


def verify_dump(dump_gz: Path, url: str, home: Home, seal: str | None,
                signer: Signer | None = None) -> tuple[AuditReport, str | None]:
    """Restore into a scratch database, audit it; ``seal`` (a signed checkpoint at the
    dump's size) must be reached by the recomputed root. With ``signer`` and no seal,
    the seal is made here, at the size the scratch copy holds, and returned."""
    with scratch_database(url) as scratch:
        load_dump(dump_gz, scratch)
        if seal is None and signer is not None:
            store = open_store(scratch, readonly=True)
            try:
                with store.transaction(write=False):
                    head = store.head()
            finally:
                store.close()
            seal = sign_checkpoint(Checkpoint(signer.name, head.size, head.root()), signer)
        note = None if seal is None else (seal, f"the backup's seal {seal_path(dump_gz).name}")
        try:
            report = audit(scratch, [load_verifier(home)], origin=origin(home),
                           checkpoint_note=note)
        except TamperedError as exc:
            raise BackupError(f"{dump_gz.name} fails verification: {exc}") from None
        if report.tree_size and report.latest_signed_size is None:
            raise BackupError(f"{dump_gz.name} holds no signed checkpoint")
        if seal is not None and report.latest_signed_size != report.tree_size:
            raise BackupError(f"{dump_gz.name}: its seal covers {report.latest_signed_size} of "
                              f"{report.tree_size} entries")
        return report, seal


def backup(home: Home, url: str, *, db: str | os.PathLike[str] | None,
           out_dir: Path | None, name: str | None) -> BackupInfo:
    from aurora.ledger.ledger import Ledger

    out = out_dir or home.backups_dir
    created = utc_now()
    filename = name or f"ledger-{created:%Y%m%d-%H%M%S}{SUFFIX}"
    if not filename.endswith(SUFFIX) or "/" in filename or filename.startswith("."):
        raise BackupError(f"backup name {filename!r} must be a plain file name ending in "
                          f"{SUFFIX} (a PostgreSQL ledger's backups are SQL dumps)")
    signer = load_signer(home)
    out.mkdir(parents=True, exist_ok=True)
    with Ledger.open(home, db=db) as ledger:
        ledger.checkpoint()
        with tempfile.TemporaryDirectory(prefix=".backup-", dir=out) as tmp:
            packed = Path(tmp) / filename
            dump = _run([_tool("pg_dump"), "--data-only", "--no-owner", "--no-privileges",
                         *[f"--table={t}" for t in TABLES], "-d", url],
                        what="pg_dump of the ledger")
            with open(packed, "wb") as raw:
                with gzip.GzipFile(filename=filename.removesuffix(".gz"), mode="wb",
                                   fileobj=raw, mtime=0) as gz:
                    gz.write(dump)
                raw.flush()
                os.fsync(raw.fileno())
            report, seal = verify_dump(packed, url, home, None, signer)
            assert seal is not None
            return publish(ledger, packed, out, report, latest=LATEST.replace(".db.gz", SUFFIX),
                           seal=seal)


def restore(home: Home, file: Path, url: str, sha: str, *,
            db: str | os.PathLike[str] | None) -> RestoreInfo:
    if not file.name.endswith(SUFFIX):
        raise BackupError(f"{file} is not a PostgreSQL ledger backup (*{SUFFIX}); a SQLite "
                          "backup moves into PostgreSQL with `aurora ledger migrate`")
    seal_file = seal_path(file)
    seal = seal_file.read_text(encoding="utf-8") if seal_file.exists() else None
    try:
        report, _ = verify_dump(file, url, home, seal)
    except LedgerError as exc:
        raise BackupError(f"refusing to restore {file}: {exc}") from None
    load_dump(file, url)
    return finish_restore(home, url, db=db, file=file, sha=sha, report=report, moved=[])
