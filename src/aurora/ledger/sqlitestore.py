"""SQLite storage of the ledger (the embedded default), behind ``storage.LedgerStore``.

Layout (one database file, WAL, ``synchronous=FULL``):

* ``audit_log(seq, ts, kind, treaty_id, tenant_id, subject, payload, leaf_hash)``:
  one row per leaf, ``seq`` = leaf index from 0, ``payload`` = the canonical JSON
  of the entry (TEXT, so operators can read it with ``sqlite3`` and JSON1 works
  on it), ``leaf_hash`` = SHA-256(0x00 || payload).
* ``merkle_hashes(idx, hash)``: every stored hash in tlog's stored-hash-index
  layout (see ``merkle``), written in index order with the leaves that create them.
* ``checkpoints(tree_size, root_hash, ts, note)``: signed checkpoints, written
  every few seconds rather than per batch so the table stays small.

Triggers refuse UPDATE and DELETE on all three tables: the library has no such
API and this stops accidents; a deliberate attacker can drop them, which is what
``verify-audit`` is for.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from aurora.ledger import merkle
from aurora.ledger.entry import LedgerRow
from aurora.ledger.errors import LedgerBusyError, LedgerDatabaseError

APPLICATION_ID = 0x41555252  # "AURR": marks a file as an Aurora ledger
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000
ROW_COLUMNS = "seq, ts, kind, treaty_id, tenant_id, subject, CAST(payload AS BLOB), leaf_hash"

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY,  -- leaf index, from 0, no gaps
    ts TEXT NOT NULL,         -- RFC 3339 UTC, microseconds, Z; assigned at append
    kind TEXT NOT NULL,
    treaty_id TEXT,
    tenant_id TEXT,
    subject TEXT,             -- the order nonce for order/decision/drop entries
    payload TEXT NOT NULL,    -- RFC 8785 canonical JSON of the entry: the leaf data
    leaf_hash BLOB NOT NULL   -- SHA-256(0x00 || payload)
);
CREATE INDEX IF NOT EXISTS audit_log_kind_ts ON audit_log(kind, ts);
CREATE INDEX IF NOT EXISTS audit_log_ts ON audit_log(ts);
CREATE TABLE IF NOT EXISTS merkle_hashes (
    idx INTEGER PRIMARY KEY,  -- tlog stored hash index
    hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    tree_size INTEGER PRIMARY KEY,
    root_hash BLOB NOT NULL,
    ts TEXT NOT NULL,
    note TEXT NOT NULL        -- C2SP signed note of the tlog checkpoint
);
"""
_APPEND_ONLY = ("audit_log", "merkle_hashes", "checkpoints")


# Checks every row's columns against its payload inside SQLite (JSON1, in C); the audit
# runs it in a second thread: sqlite3 releases the GIL while it steps, so this overlaps
# with the hashing in Python. One parse per row: the payload's six fields, rendered as
# a JSON array, must equal the array of the columns. The comparison is type-exact (5 and
# "5", null and "" differ), unlike comparing SQL values under SQLite's affinity rules.
COLUMN_CHECK = """
SELECT seq FROM audit_log WHERE seq < ? AND CASE
  WHEN substr(payload, 1, 8) IS NOT '{"data":' OR NOT json_valid(payload) THEN 1
  ELSE json_extract(payload, '$.seq', '$.ts', '$.kind', '$.treaty_id', '$.tenant_id',
                    '$.subject')
       IS NOT json_array(seq, ts, kind, treaty_id, tenant_id, subject)
END ORDER BY seq LIMIT 1
"""


def fold_wal(path: Path) -> None:
    """Checkpoint a database's WAL into its file, if it opens (before moving it aside)."""
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    except sqlite3.Error:
        pass  # a corrupt database is moved aside as it is


def _triggers() -> str:
    out = []
    for table in _APPEND_ONLY:
        for op in ("UPDATE", "DELETE"):
            out.append(f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON "
                       f"{table} BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;")
    return "\n".join(out)


def describe(exc: sqlite3.Error, path: Path) -> LedgerDatabaseError:
    """One operator-readable line for a SQLite failure."""
    message = str(exc)
    if "locked" in message or "busy" in message:
        return LedgerBusyError(f"ledger database {path} is locked by another process "
                               f"(gave up after waiting up to {BUSY_TIMEOUT_MS // 1000}s)")
    if "not a database" in message or "malformed" in message or "corrupt" in message:
        return LedgerDatabaseError(f"ledger database {path} is corrupt or not a SQLite "
                                   f"database ({message}); it was left untouched")
    return LedgerDatabaseError(f"ledger database {path}: {message}")


@contextlib.contextmanager
def sqlite_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise describe(exc, path) from None


def connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), usable from any thread."""
    with sqlite_errors(path):
        if readonly:
            if not path.exists():
                raise LedgerDatabaseError(f"no ledger database at {path}")
            conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True,
                                   isolation_level=None, check_same_thread=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA synchronous = FULL")
            # Reading the schema fails right here if the file is not a database.
            conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        except BaseException:
            conn.close()
            raise
    return conn


class SqliteStore:
    """One connection to a ledger database file. Not thread-safe: one thread per store."""

    def __init__(self, path: Path, *, readonly: bool) -> None:
        self.path = path
        self.readonly = readonly
        self.conn = connect(path, readonly=readonly)
        self._lock_fd: int | None = None

    def close(self) -> None:
        if not self.readonly:
            # fold the WAL back into the database file: after a clean stop the file alone
            # (the way operators copy it) holds every entry. Best effort: a reader in the
            # middle of a transaction elsewhere only leaves the rest for the next writer.
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        self.conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def location(self) -> str:
        return str(self.path)

    def errors(self) -> contextlib.AbstractContextManager[None]:
        return sqlite_errors(self.path)

    # --- schema ---------------------------------------------------------------------------

    def tables(self) -> set[str]:
        with self.errors():
            rows = self.conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")
            return {name for (name,) in rows}

    def create_schema(self) -> None:
        """Create missing tables (idempotent) and switch the file to WAL."""
        with self.errors():
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise LedgerDatabaseError(f"ledger database {self.path}: cannot use WAL "
                                          f"(journal mode {mode})")
            app_id = self.conn.execute("PRAGMA application_id").fetchone()[0]
            tables = self.tables()
            if app_id not in (0, APPLICATION_ID) or (tables and "audit_log" not in tables):
                raise LedgerDatabaseError(f"{self.path} is a SQLite database but not an Aurora "
                                          "ledger; refusing to write to it")
            try:
                self.conn.executescript(
                    f"BEGIN IMMEDIATE; {SCHEMA} {_triggers()} "
                    f"PRAGMA application_id = {APPLICATION_ID}; "
                    f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        self.check_schema()

    def check_schema(self) -> None:
        """Refuse databases whose ``audit_log`` lacks the ledger's columns."""
        with self.errors():
            if "audit_log" not in self.tables():
                raise LedgerDatabaseError(f"{self.path} has no audit_log table: not a ledger")
            columns = {row[1] for row in self.conn.execute("PRAGMA table_info(audit_log)")}
        wanted = {"seq", "ts", "kind", "treaty_id", "tenant_id", "subject", "payload",
                  "leaf_hash"}
        if not wanted <= columns:
            raise LedgerDatabaseError(f"{self.path}: audit_log lacks columns "
                                      f"{', '.join(sorted(wanted - columns))}")

    # --- transactions ---------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self, *, write: bool) -> Iterator[None]:
        """A read snapshot (``write=False``) or the database's write lock until commit."""
        with self.writer_turn() if write else contextlib.nullcontext(), self.errors():
            self.conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        # One ledger process at a time while opening: switching a new file to WAL
        # fails at once (no busy wait) while another connection is creating it.
        return self.writer_turn()

    @contextlib.contextmanager
    def writer_turn(self) -> Iterator[None]:
        """Queue behind other ledger processes on a kernel lock before BEGIN IMMEDIATE.

        SQLite's busy handler polls with sleeps of up to 100 ms, so processes
        contending for the write lock would idle; a blocking flock hands the turn
        over as soon as the holder commits. Other SQLite clients (the sqlite3
        shell) are still excluded by BEGIN IMMEDIATE itself.
        """
        if self._lock_fd is None:
            self._lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        fd = self._lock_fd
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        pause = 0.0002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # Poll briefly rather than block, so a peer that hangs holding the
                # lock makes this fail after the busy timeout instead of hanging.
                if time.monotonic() > deadline:
                    raise LedgerBusyError(
                        f"ledger database {self.path} is locked by another process "
                        f"(gave up after {BUSY_TIMEOUT_MS // 1000}s)") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.002)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    # --- reads ----------------------------------------------------------------------------

    def size(self) -> int:
        """Number of leaves: last seq + 1 (seq has no gaps unless tampered with)."""
        with self.errors():
            row = self.conn.execute(
                "SELECT seq FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        return 0 if row is None else int(row[0]) + 1

    def last_ts(self) -> str | None:
        with self.errors():
            row = self.conn.execute(
                "SELECT ts FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else str(row[0])

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        """The stored hashes at these indexes (a ``merkle.HashReader``)."""
        if not indexes:
            return []
        with self.errors():
            found: dict[int, bytes] = {}
            for start in range(0, len(indexes), 500):  # SQLite's bound-parameter limit
                part = indexes[start:start + 500]
                marks = ",".join("?" * len(part))
                found.update(self.conn.execute(
                    f"SELECT idx, hash FROM merkle_hashes WHERE idx IN ({marks})", part))
        try:
            return [found[i] for i in indexes]
        except KeyError as exc:
            raise LedgerDatabaseError(f"ledger database {self.path}: stored hash {exc} is "
                                      "missing (run `aurora ledger verify-audit`)") from None

    def stored_hash_count(self) -> int:
        with self.errors():
            row = self.conn.execute(
                "SELECT idx FROM merkle_hashes ORDER BY idx DESC LIMIT 1").fetchone()
        return 0 if row is None else int(row[0]) + 1

    def head(self) -> merkle.Frontier:
        """The frontier of the current tree (call inside a transaction for a snapshot)."""
        size = self.size()
        return merkle.Frontier.load(size, self.read_hashes)

    def get(self, seq: int) -> LedgerRow | None:
        with self.errors():
            row = self.conn.execute(f"SELECT {ROW_COLUMNS} FROM audit_log WHERE seq = ?",
                                    (seq,)).fetchone()
        return None if row is None else LedgerRow(*row)

    def scan_page(self, *, kinds: Sequence[str] | None, since_ts: str | None, after: int,
                  stop: int | None, limit: int) -> list[LedgerRow]:
        """Rows with seq > ``after`` (and < ``stop``), oldest first, at most ``limit``."""
        where = ["seq > ?"]
        args: list[object] = [after]
        if stop is not None:
            where.append("seq < ?")
            args.append(stop)
        if kinds is not None:
            where.append(f"kind IN ({','.join('?' * len(kinds))})")
            args.extend(kinds)
        if since_ts is not None:
            where.append("ts >= ?")
            args.append(since_ts)
        args.append(limit)
        sql = (f"SELECT {ROW_COLUMNS} FROM audit_log WHERE {' AND '.join(where)} "
               "ORDER BY seq LIMIT ?")
        with self.errors():
            return [LedgerRow(*row) for row in self.conn.execute(sql, args)]

    def checkpoint_rows(self, *, latest_only: bool = False) -> list[tuple[int, bytes, str]]:
        """(tree_size, root_hash, note) of stored checkpoints, by size."""
        if "checkpoints" not in self.tables():
            return []
        order = "DESC LIMIT 1" if latest_only else "ASC"
        with self.errors():
            rows = self.conn.execute(
                f"SELECT tree_size, root_hash, note FROM checkpoints ORDER BY tree_size {order}")
            return [(int(size), bytes(root), str(note)) for size, root, note in rows]

    def checkpoint_table(self) -> list[tuple[int, bytes, str, str]]:
        if "checkpoints" not in self.tables():
            return []
        with self.errors():
            rows = self.conn.execute(
                "SELECT tree_size, root_hash, ts, note FROM checkpoints ORDER BY tree_size")
            return [(int(n), bytes(r), str(t), str(note)) for n, r, t, note in rows]

    # --- the audit's streams --------------------------------------------------------------

    def leaf_rows(self) -> sqlite3.Cursor:
        with self.errors():
            return self.conn.execute(
                "SELECT seq, CAST(payload AS BLOB), leaf_hash FROM audit_log ORDER BY seq")

    def hash_rows(self) -> sqlite3.Cursor:
        with self.errors():
            return self.conn.execute("SELECT idx, hash FROM merkle_hashes ORDER BY idx")

    def checkpoint_roots(self) -> Iterator[tuple[int, bytes]]:
        if "checkpoints" not in self.tables():
            return
        with self.errors():
            rows = self.conn.execute(
                "SELECT tree_size, root_hash FROM checkpoints ORDER BY tree_size")
            for size, root in rows:
                yield int(size), bytes(root)

    def checkpoint_notes(self, lo: int, hi: int) -> Iterator[tuple[int, bytes, str]]:
        with self.errors():
            rows = self.conn.execute(
                "SELECT tree_size, root_hash, note FROM checkpoints WHERE tree_size > ? AND "
                "tree_size <= ? ORDER BY tree_size", (lo, hi))
            for size, root, note in rows:
                yield int(size), bytes(root), str(note)

    def checkpoint_note(self, size: int) -> str | None:
        with self.errors():
            row = self.conn.execute("SELECT note FROM checkpoints WHERE tree_size = ?",
                                    (size,)).fetchone()
        return None if row is None else str(row[0])

    def checkpoint_sizes(self) -> tuple[int, int | None, int | None]:
        if "checkpoints" not in self.tables():
            return 0, None, None
        with self.errors():
            count, last = self.conn.execute(
                "SELECT count(*), max(tree_size) FROM checkpoints").fetchone()
            if not count:
                return 0, None, None
            (middle,) = self.conn.execute("SELECT tree_size FROM checkpoints ORDER BY "
                                          "tree_size LIMIT 1 OFFSET ?", (count // 2,)).fetchone()
        return int(count), int(middle), int(last)

    def first_column_mismatch(self, size: int) -> int | None:
        with self.errors():
            row = self.conn.execute(COLUMN_CHECK, (size,)).fetchone()
        return None if row is None else int(row[0])

    def integrity_check(self) -> list[str]:
        """``PRAGMA integrity_check``: b-tree structure, indexes, page accounting."""
        with self.errors():
            rows = [str(r[0]) for r in self.conn.execute("PRAGMA integrity_check")]
        return [] if rows == ["ok"] else rows

    # --- file operations (SQLite only: backups, restore) ----------------------------------

    def copy_to(self, target: Path) -> None:
        """A consistent copy of the live WAL database as one self-contained file."""
        with self.errors():
            dst = sqlite3.connect(target, isolation_level=None)
            try:
                self.conn.backup(dst)  # pages=-1: one step, one read snapshot
                dst.execute("PRAGMA journal_mode = DELETE")
            finally:
                dst.close()

    def make_self_contained(self) -> None:
        """Fold the WAL into the file and leave rollback-journal mode (a file to copy)."""
        with self.errors():
            self.conn.execute("PRAGMA journal_mode = DELETE")

    # --- writes (inside transaction(write=True)) -----------------------------------------

    def insert(self, rows: Sequence[tuple[object, ...]], first_index: int,
               hashes: Sequence[bytes]) -> None:
        """Insert leaf rows and the stored hashes they create, from ``first_index`` on."""
        with self.errors():
            self.conn.executemany(
                "INSERT INTO audit_log (seq, ts, kind, treaty_id, tenant_id, subject, payload, "
                "leaf_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            self.conn.executemany("INSERT INTO merkle_hashes (idx, hash) VALUES (?, ?)",
                                  zip(range(first_index, first_index + len(hashes)), hashes,
                                      strict=True))

    def insert_checkpoint(self, size: int, root: bytes, ts: str, note: str) -> None:
        with self.errors():
            self.conn.execute("INSERT OR IGNORE INTO checkpoints (tree_size, root_hash, ts, note)"
                              " VALUES (?, ?, ?, ?)", (size, root, ts, note))


class SqliteReaders:
    """One read-only connection per reading thread, opened on its first read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._stores: list[SqliteStore] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def borrow(self) -> Iterator[SqliteStore]:
        store: SqliteStore | None = getattr(self._local, "store", None)
        if store is None:
            store = SqliteStore(self.path, readonly=True)
            self._local.store = store
            with self._lock:
                self._stores.append(store)
        yield store

    def close(self) -> None:
        with self._lock:
            for store in self._stores:
                store.close()
            self._stores.clear()
