"""PostgreSQL storage of the ledger (``database_url`` = ``postgresql://...``).

The same three append-only tables as the SQLite file, plus ``ledger_tree``: one
row holding the tree size. Every append transaction locks that row
(``SELECT ... FOR UPDATE``) before reading the size, so writers in any number of
processes on any number of machines take turns and number their leaves from the
size they saw: one total order, no gaps, no forks (the pattern of Tessera's SQL
drivers). A trigger lets the row's size only grow.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from aurora.db.postgres import (
    CONNECT_TIMEOUT_S,
    DatabaseError,
    DatabaseUnavailableError,
    connect,
    pool,
    redact,
)
from aurora.db.postgres import errors as db_errors
from aurora.db.schema import Schema
from aurora.ledger import merkle
from aurora.ledger.entry import LedgerRow
from aurora.ledger.errors import LedgerDatabaseError, LedgerUnavailableError
from aurora.ledger.storage import Rows

_APPEND_ONLY = ("audit_log", "merkle_hashes", "checkpoints")


def _append_only_triggers() -> str:
    out = ["""
CREATE OR REPLACE FUNCTION aurora_ledger_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
"""]
    for table in _APPEND_ONLY:
        out.append(f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON "
                   f"{table} FOR EACH ROW EXECUTE FUNCTION aurora_ledger_append_only();")
        out.append(f"CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION aurora_ledger_append_only();")
    return "\n".join(out)


DDL = """
CREATE TABLE IF NOT EXISTS audit_log (
    seq BIGINT PRIMARY KEY CHECK (seq >= 0),  -- leaf index, from 0, no gaps
    ts TEXT NOT NULL,         -- RFC 3339 UTC, microseconds, Z; assigned at append
    kind TEXT NOT NULL,
    treaty_id TEXT,
    tenant_id TEXT,
    subject TEXT,             -- the order nonce for order/decision/drop entries
    payload TEXT NOT NULL,    -- RFC 8785 canonical JSON of the entry: the leaf data
    leaf_hash BYTEA NOT NULL  -- SHA-256(0x00 || payload)
);
CREATE INDEX IF NOT EXISTS audit_log_kind_ts ON audit_log(kind, ts);
CREATE INDEX IF NOT EXISTS audit_log_ts ON audit_log(ts);
CREATE TABLE IF NOT EXISTS merkle_hashes (
    idx BIGINT PRIMARY KEY CHECK (idx >= 0),  -- tlog stored hash index
    hash BYTEA NOT NULL CHECK (length(hash) = 32)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    tree_size BIGINT PRIMARY KEY,  -- one checkpoint per size: two roots for a size cannot exist
    root_hash BYTEA NOT NULL CHECK (length(root_hash) = 32),
    ts TEXT NOT NULL,
    note TEXT NOT NULL        -- C2SP signed note of the tlog checkpoint
);
CREATE TABLE IF NOT EXISTS ledger_tree (
    id SMALLINT PRIMARY KEY CHECK (id = 1),  -- exactly one row: the lock writers queue on
    size BIGINT NOT NULL CHECK (size >= 0)
);
INSERT INTO ledger_tree (id, size) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;

CREATE OR REPLACE FUNCTION aurora_ledger_tree_grows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.size < OLD.size THEN
        RAISE EXCEPTION 'ledger_tree: the tree size only grows'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER ledger_tree_grows BEFORE UPDATE OR DELETE ON ledger_tree
    FOR EACH ROW EXECUTE FUNCTION aurora_ledger_tree_grows();
""" + _append_only_triggers()

SCHEMA = Schema(name="ledger", version=1,
                tables=("audit_log", "merkle_hashes", "checkpoints", "ledger_tree"), ddl=DDL)


ROW_COLUMNS = "seq, ts, kind, treaty_id, tenant_id, subject, convert_to(payload, 'UTF8'), leaf_hash"
LEDGER_COLUMNS = {"seq", "ts", "kind", "treaty_id", "tenant_id", "subject", "payload",
                  "leaf_hash"}
AUDIT_FETCH = 8192  # rows per fetch of the audit's server-side cursors

# The audit's column check, in the server (parallel to the hashing in Python). A
# payload is '{"data":' + data + a tail that is a function of the columns alone (the
# layout `entry.prepare` writes, keys in RFC 8785 order): rebuild the tail from the
# columns and compare, which is type-exact (5 and "5", null and "" differ) and far
# cheaper than parsing every payload into jsonb. The comparison is of UTF-8 bytes:
# `right(text, n)` counts characters from the start of each payload, bytes are cut at
# an offset (the tail starts with ',', so a byte suffix is a character suffix).
# PostgreSQL's JSON string escapes are RFC 8785's (short forms for \b\f\n\r\t, \u00xx
# for other controls, nothing else). ``payload::json`` checks the payload is JSON; if
# not, the cast fails: see first_column_mismatch.
COLUMN_CHECK = """
SELECT seq FROM (
  SELECT seq, payload, convert_to(payload, 'UTF8') AS b, convert_to(
         ',"kind":' || to_json(kind)::text || ',"seq":' || seq::text
         || ',"subject":' || coalesce(to_json(subject)::text, 'null')
         || ',"tenant_id":' || coalesce(to_json(tenant_id)::text, 'null')
         || ',"treaty_id":' || coalesce(to_json(treaty_id)::text, 'null')
         || ',"ts":' || to_json(ts)::text || '}', 'UTF8') AS tail
  FROM audit_log WHERE seq < %s OFFSET 0) AS r
WHERE substring(b FROM 1 FOR 8) <> '\\x7b2264617461223a'::bytea  -- '{"data":'
   OR substring(b FROM octet_length(b) - octet_length(tail) + 1) <> tail
   OR payload::json IS NULL
ORDER BY seq LIMIT 1
"""


def _bytes(value: object) -> bytes:
    return bytes(value) if isinstance(value, bytes | bytearray | memoryview) else b""


class PgStore:
    """One connection to a ledger in PostgreSQL. Not thread-safe: one thread per store.

    The connection is re-opened on first use after it broke (server restart,
    failover), so a writer recovers by itself once PostgreSQL is back; while it is
    gone every call raises ``LedgerUnavailableError``.
    """

    def __init__(self, url: str, *, readonly: bool,
                 borrowed: psycopg.Connection[tuple[Any, ...]] | None = None) -> None:
        self.url = url
        self.readonly = readonly
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = borrowed
        self._borrowed = borrowed is not None  # a pool's: never re-opened or closed here
        self._streams: list[_ReadAhead] = []  # the audit's, closed with its transaction
        # During a write turn: the tree size read with the lock (then the size after this
        # turn's inserts), and whether the turn grew the tree (its UPDATE goes with COMMIT).
        self._turn_size: int | None = None
        self._grown = False
        self._tree_row_checked = False
        self.conn  # noqa: B018 - connect now: a bad URL or a server that is down fails open

    @property
    def location(self) -> str:
        return redact(self.url)

    @property
    def conn(self) -> psycopg.Connection[tuple[Any, ...]]:
        conn = self._conn
        if self._borrowed and conn is not None:
            return conn  # a broken one raises on use; the pool checks it when given back
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            self._conn = None
            with self.errors():
                conn = connect(self.url)
                if self.readonly:
                    conn.execute("SET default_transaction_read_only = on")
            self._conn = conn
        return conn

    def close(self) -> None:
        self._close_streams()
        if self._conn is not None and not self._borrowed:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        try:
            with db_errors(self.url):
                yield
        except DatabaseUnavailableError as exc:
            raise LedgerUnavailableError(str(exc)) from None
        except DatabaseError as exc:
            raise LedgerDatabaseError(str(exc)) from None

    # --- schema ---------------------------------------------------------------------------

    def tables(self) -> set[str]:
        with self.errors():
            rows = self.conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            return {str(name) for (name,) in rows}

    def create_schema(self) -> None:
        """Apply every registered schema (idempotent; refuses a foreign database)."""
        from aurora.db import schema

        if not set(SCHEMA.tables) <= self.tables():
            with self.errors():
                schema.init(self.url)
        self.check_schema()

    def check_schema(self) -> None:
        with self.errors():
            columns = {str(name) for (name,) in self.conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                "current_schema() AND table_name = 'audit_log'")}
        if not columns:
            raise LedgerDatabaseError(f"{self.location} has no audit_log table: not a ledger "
                                      "(run `aurora db init`)")
        if not columns >= LEDGER_COLUMNS:
            raise LedgerDatabaseError(f"{self.location}: audit_log lacks columns "
                                      f"{', '.join(sorted(LEDGER_COLUMNS - columns))}")

    # --- transactions ---------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self, *, write: bool) -> Iterator[None]:
        """A repeatable-read snapshot, or the write turn: the tree-state row locked.

        Under the lock (READ COMMITTED) every statement sees what earlier writers
        committed, so the size read next is the true end of the log.
        """
        with self.errors():
            conn = self.conn
            if not write:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            else:
                # one round trip; the locked row is read at its latest committed version,
                # so its size is the true end of the log (the write turn's hot path)
                cursor = conn.execute("BEGIN; SELECT size FROM ledger_tree WHERE id = 1 "
                                      "FOR UPDATE")
                cursor.nextset()
                locked = cursor.fetchone()
                if locked is None:
                    conn.execute("ROLLBACK")
                    raise LedgerDatabaseError(f"{self.location}: ledger_tree has no row "
                                              "(run `aurora db init`)")
                self._turn_size, self._grown = int(locked[0]), False
            try:
                if write and not self._tree_row_checked:
                    self._check_tree_row()
                yield
                self._close_streams()  # before the snapshot ends: their cursors end with it
                if self._grown:  # one round trip for the new size and the commit
                    conn.execute(f"UPDATE ledger_tree SET size = {int(self.size())} "
                                 "WHERE id = 1; COMMIT")
                else:
                    conn.execute("COMMIT")
            except BaseException:
                self._close_streams()
                with contextlib.suppress(Exception):
                    conn.execute("ROLLBACK")
                raise
            finally:
                self._turn_size, self._grown = None, False

    def _check_tree_row(self) -> None:
        """Once per connection: the tree-state row matches the log it counts."""
        row = self._one("SELECT seq FROM audit_log ORDER BY seq DESC LIMIT 1")
        rows = 0 if row is None else int(row[0]) + 1
        if rows != self._turn_size:
            raise LedgerDatabaseError(
                f"{self.location}: ledger_tree says {self._turn_size} entries, audit_log holds "
                f"{rows} (run `aurora ledger verify-audit`)")
        self._tree_row_checked = True

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        # Opening needs no exclusion in PostgreSQL: schema.init serialises itself with
        # an advisory lock and every append locks the tree-state row.
        yield

    # --- reads ----------------------------------------------------------------------------

    def _one(self, sql: str, args: Sequence[object] = ()) -> tuple[Any, ...] | None:
        with self.errors():
            return self.conn.execute(sql, args).fetchone()

    def size(self) -> int:
        if self._turn_size is not None:
            return self._turn_size
        row = self._one("SELECT seq FROM audit_log ORDER BY seq DESC LIMIT 1")
        return 0 if row is None else int(row[0]) + 1

    def last_ts(self) -> str | None:
        row = self._one("SELECT ts FROM audit_log ORDER BY seq DESC LIMIT 1")
        return None if row is None else str(row[0])

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        if not indexes:
            return []
        with self.errors():
            found = {int(i): _bytes(h) for i, h in self.conn.execute(
                "SELECT idx, hash FROM merkle_hashes WHERE idx = ANY(%s)", (list(indexes),))}
        try:
            return [found[i] for i in indexes]
        except KeyError as exc:
            raise LedgerDatabaseError(f"ledger database {self.location}: stored hash {exc} is "
                                      "missing (run `aurora ledger verify-audit`)") from None

    def stored_hash_count(self) -> int:
        row = self._one("SELECT idx FROM merkle_hashes ORDER BY idx DESC LIMIT 1")
        return 0 if row is None else int(row[0]) + 1

    def head(self) -> merkle.Frontier:
        return merkle.Frontier.load(self.size(), self.read_hashes)

    @staticmethod
    def _row(row: tuple[Any, ...]) -> LedgerRow:
        seq, ts, kind, treaty, tenant, subject, payload, leaf = row
        return LedgerRow(int(seq), ts, kind, treaty, tenant, subject, _bytes(payload),
                         _bytes(leaf))

    def get(self, seq: int) -> LedgerRow | None:
        row = self._one(f"SELECT {ROW_COLUMNS} FROM audit_log WHERE seq = %s", (seq,))
        return None if row is None else self._row(row)

    def scan_page(self, *, kinds: Sequence[str] | None, since_ts: str | None, after: int,
                  stop: int | None, limit: int) -> list[LedgerRow]:
        where = ["seq > %s"]
        args: list[object] = [after]
        if stop is not None:
            where.append("seq < %s")
            args.append(stop)
        if kinds is not None:
            where.append("kind = ANY(%s)")
            args.append(list(kinds))
        if since_ts is not None:
            where.append("ts >= %s")
            args.append(since_ts)
        args.append(limit)
        sql = (f"SELECT {ROW_COLUMNS} FROM audit_log WHERE {' AND '.join(where)} "
               "ORDER BY seq LIMIT %s")
        with self.errors():
            return [self._row(row) for row in self.conn.execute(sql, args)]

    def checkpoint_rows(self, *, latest_only: bool = False) -> list[tuple[int, bytes, str]]:
        order = "DESC LIMIT 1" if latest_only else "ASC"
        with self.errors():
            rows = self.conn.execute(
                f"SELECT tree_size, root_hash, note FROM checkpoints ORDER BY tree_size {order}")
            return [(int(size), _bytes(root), str(note)) for size, root, note in rows]

    def checkpoint_table(self) -> list[tuple[int, bytes, str, str]]:
        with self.errors():
            rows = self.conn.execute(
                "SELECT tree_size, root_hash, ts, note FROM checkpoints ORDER BY tree_size")
            return [(int(n), _bytes(r), str(t), str(note)) for n, r, t, note in rows]

    # --- the audit's streams (server-side cursors, read ahead: memory stays flat) ----------

    def _stream(self, sql: str) -> Rows:
        """A named cursor (needs the enclosing transaction: the audit's snapshot) whose
        next rows a thread fetches while the audit hashes the ones before: the server's
        work overlaps the audit's instead of alternating with it."""
        with self.errors():
            cursor = self.conn.cursor(name=f"aurora_audit_{len(self._streams)}", binary=True)
            cursor.execute(sql)
        stream = _ReadAhead(self, cursor)
        self._streams.append(stream)
        return stream

    def _close_streams(self) -> None:
        for stream in self._streams:
            stream.close()
        self._streams.clear()

    def leaf_rows(self) -> Rows:
        return self._stream(
            "SELECT seq, convert_to(payload, 'UTF8'), leaf_hash FROM audit_log ORDER BY seq")

    def hash_rows(self) -> Rows:
        return self._stream("SELECT idx, hash FROM merkle_hashes ORDER BY idx")

    def checkpoint_roots(self) -> Iterator[tuple[int, bytes]]:
        with self.errors(), self.conn.cursor() as cursor:
            cursor.execute("SELECT tree_size, root_hash FROM checkpoints ORDER BY tree_size")
            rows = cursor.fetchall()  # checkpoints are few (one per 5 s at most)
        for size, root in rows:
            yield int(size), _bytes(root)

    def checkpoint_notes(self, lo: int, hi: int) -> Iterator[tuple[int, bytes, str]]:
        with self.errors():
            rows = self.conn.execute(
                "SELECT tree_size, root_hash, note FROM checkpoints WHERE tree_size > %s AND "
                "tree_size <= %s ORDER BY tree_size", (lo, hi)).fetchall()
        for size, root, note in rows:
            yield int(size), _bytes(root), str(note)

    def checkpoint_note(self, size: int) -> str | None:
        row = self._one("SELECT note FROM checkpoints WHERE tree_size = %s", (size,))
        return None if row is None else str(row[0])

    def checkpoint_sizes(self) -> tuple[int, int | None, int | None]:
        row = self._one("SELECT count(*), max(tree_size) FROM checkpoints")
        count, last = (0, None) if row is None else row
        if not count:
            return 0, None, None
        middle = self._one("SELECT tree_size FROM checkpoints ORDER BY tree_size "
                           "LIMIT 1 OFFSET %s", (int(count) // 2,))
        assert middle is not None
        return int(count), int(middle[0]), int(last)

    def first_column_mismatch(self, size: int) -> int | None:
        import psycopg.errors

        from aurora.ledger.audit import row_problem

        try:
            with self.conn.transaction():
                row = self.conn.execute(COLUMN_CHECK, (size,)).fetchone()
            return None if row is None else int(row[0])
        except (psycopg.errors.InvalidTextRepresentation,
                psycopg.errors.UntranslatableCharacter):
            # A payload jsonb refuses: not JSON (tampered), or holding \u0000, which JSON
            # allows and jsonb does not. Check row by row in Python instead.
            pass
        except psycopg.Error as exc:
            with self.errors():
                raise exc from None
        after = -1
        while True:
            page = self.scan_page(kinds=None, since_ts=None, after=after, stop=size,
                                  limit=1000)
            for entry in page:
                if row_problem(entry) is not None:
                    return entry.seq
            if len(page) < 1000:
                return None
            after = page[-1].seq

    def integrity_check(self) -> list[str]:
        """amcheck: ``verify_heapam`` on the ledger's tables and ``bt_index_check`` on their
        indexes (the extension ships with PostgreSQL; creating it needs the right to). The
        hashes themselves are recomputed from every row by verify-audit."""
        problems: list[str] = []
        with self.errors():
            conn = self.conn
            if self._one("SELECT 1 FROM pg_extension WHERE extname = 'amcheck'") is None:
                try:  # on a connection of its own: this one may be read-only
                    with connect(self.url) as admin:
                        admin.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
                except (psycopg.Error, DatabaseError) as exc:
                    raise LedgerDatabaseError(
                        f"{self.location}: amcheck is not installed and cannot be created "
                        f"({str(exc).strip()}); run CREATE EXTENSION amcheck as a superuser"
                        ) from None
            for table in (*_APPEND_ONLY, "ledger_tree"):
                for blkno, _offnum, _attnum, msg in conn.execute(
                        "SELECT * FROM verify_heapam(%s::regclass)", (table,)):
                    problems.append(f"{table} block {blkno}: {msg}")
            indexes = [str(name) for (name,) in conn.execute(
                "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = ANY("
                "ARRAY['audit_log', 'merkle_hashes', 'checkpoints', 'ledger_tree']"
                "::regclass[])")]
            for index in indexes:
                try:
                    conn.execute("SELECT bt_index_check(%s::regclass, true)", (index,))
                except psycopg.errors.IndexCorrupted as exc:
                    problems.append(f"index {index}: {str(exc).strip()}")
        return problems

    # --- writes (inside transaction(write=True)) -----------------------------------------

    def insert(self, rows: Sequence[tuple[object, ...]], first_index: int,
               hashes: Sequence[bytes]) -> None:
        """Leaves and their stored hashes by COPY (one round trip per table), then the size."""
        if not rows:
            return
        with self.errors():
            conn = self.conn
            with conn.cursor() as cursor:
                with cursor.copy("COPY audit_log (seq, ts, kind, treaty_id, tenant_id, subject, "
                                 "payload, leaf_hash) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                with cursor.copy("COPY merkle_hashes (idx, hash) FROM STDIN") as copy:
                    for index, value in enumerate(hashes, first_index):
                        copy.write_row((index, value))
                last = rows[-1][0]
                assert isinstance(last, int)
                if self._turn_size is None:  # outside a write turn: now
                    cursor.execute("UPDATE ledger_tree SET size = %s WHERE id = 1", (last + 1,))
                else:  # with the turn's COMMIT
                    self._turn_size, self._grown = last + 1, True

    def sync_tree_size(self) -> None:
        """Move the tree-state row to the rows a bulk load (a restored dump) wrote."""
        with self.errors():
            self.conn.execute("UPDATE ledger_tree SET size = (SELECT coalesce(max(seq) + 1, 0) "
                              "FROM audit_log) WHERE id = 1")

    def insert_checkpoint(self, size: int, root: bytes, ts: str, note: str) -> None:
        """Store a checkpoint; one for a size exists at most, and never with another root."""
        with self.errors():
            self.conn.execute("INSERT INTO checkpoints (tree_size, root_hash, ts, note) VALUES "
                              "(%s, %s, %s, %s) ON CONFLICT (tree_size) DO NOTHING",
                              (size, root, ts, note))
            row = self._one("SELECT root_hash FROM checkpoints WHERE tree_size = %s", (size,))
        if row is None or _bytes(row[0]) != root:
            raise LedgerDatabaseError(f"{self.location}: a checkpoint of size {size} with "
                                      "another root is stored: the log forked")


class _ReadAhead:
    """A server-side cursor fetched by a thread of its own, up to two fetches ahead of
    its reader; fetch errors are raised to the reader as ledger errors."""

    _END = object()

    def __init__(self, store: PgStore, cursor: psycopg.Cursor[tuple[Any, ...]]) -> None:
        self.store = store
        self.cursor = cursor
        self._chunks: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._rows: list[Any] = []
        self._at = 0
        self._done = False
        self._thread = threading.Thread(target=self._fetch, name="ledger-audit-fetch",
                                        daemon=True)
        self._thread.start()

    def _fetch(self) -> None:
        try:
            while not self._stop.is_set():
                with self.store.errors():
                    rows = self.cursor.fetchmany(AUDIT_FETCH)
                self._put(rows or self._END)
                if not rows:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the reader
            self._put(exc)

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._chunks.put(item, timeout=0.1)
                return

    def _more(self) -> bool:
        """The next fetched chunk into ``_rows``; False at the end."""
        if self._done:
            return False
        item = self._chunks.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        if item is self._END:
            self._done = True
            return False
        self._rows, self._at = item, 0
        return True

    def fetchmany(self, size: int = AUDIT_FETCH) -> list[Any]:
        out: list[Any] = []
        while len(out) < size:
            if self._at >= len(self._rows) and not self._more():
                break
            take = self._rows[self._at:self._at + size - len(out)]
            self._at += len(take)
            out += take
        return out

    def fetchone(self) -> Any:
        rows = self.fetchmany(1)
        return rows[0] if rows else None

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(Exception):
            self.cursor.close()


READ_POOL_SIZE = 4  # server connections for one process's ledger reads (see RUNBOOK sizing)
READ_POOL_TIMEOUT_S = CONNECT_TIMEOUT_S  # waiting longer is "unavailable" (the bridge's 503)


class PgReaders:
    """A bounded pool of read-only connections shared by a process's reading threads."""

    def __init__(self, url: str, *, size: int = READ_POOL_SIZE) -> None:
        self.url = url
        # One direct connection first: a wrong URL, password or a server that is down
        # fails here with its own message, not as a pool timeout seconds later.
        PgStore(url, readonly=True).close()
        with db_errors(url):
            self._pool = pool(url, min_size=1, max_size=size, timeout=READ_POOL_TIMEOUT_S,
                              readonly=True)

    @contextlib.contextmanager
    def borrow(self) -> Iterator[PgStore]:
        try:
            with db_errors(self.url), self._pool.connection() as conn:
                yield PgStore(self.url, readonly=True, borrowed=conn)
        except DatabaseUnavailableError as exc:
            raise LedgerUnavailableError(str(exc)) from None
        except DatabaseError as exc:
            raise LedgerDatabaseError(str(exc)) from None

    def close(self) -> None:
        self._pool.close()
