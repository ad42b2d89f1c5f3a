"""The ledger's storage interface: every SQL statement on a ledger database is behind it.

Two implementations: ``sqlitestore.SqliteStore`` (one file, WAL, the embedded
default) and ``pgstore.PgStore`` (PostgreSQL, for any number of writers on any
number of machines). Which one a ledger uses is its *location*: a ``Path`` is a
SQLite file, a ``postgresql://`` URL is PostgreSQL. ``ledger_location(home)``
resolves ``--db``, ``database_url`` (config/stack.json, ``AURORA_DATABASE_URL``)
and ``$AURORA_LEDGER_DB`` into one. The pure Merkle, note and proof modules
know nothing of this.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from aurora.home import Home
from aurora.ledger import merkle
from aurora.ledger.entry import LedgerRow

Location = Path | str  # a SQLite file, or a postgresql:// URL


class Rows(Protocol):
    """A cursor read in chunks (sqlite3 and psycopg cursors both are)."""

    def fetchmany(self, size: int = ...) -> list[Any]: ...
    def fetchone(self) -> Any: ...


class LedgerStore(Protocol):
    """One connection to a ledger database. Not thread-safe: one thread per store."""

    readonly: bool

    @property
    def location(self) -> str:
        """The database for messages: a file path, or the URL without its password."""

    def close(self) -> None: ...
    def errors(self) -> contextlib.AbstractContextManager[None]:
        """Turn the driver's exceptions into ``LedgerDatabaseError``s."""

    # schema
    def tables(self) -> set[str]: ...
    def create_schema(self) -> None:
        """Create missing tables (idempotent); refuse a database that is something else."""
    def check_schema(self) -> None:
        """Refuse a database whose ``audit_log`` is not a ledger's."""

    # transactions
    def transaction(self, *, write: bool) -> contextlib.AbstractContextManager[None]:
        """A read snapshot, or (``write``) the ledger's one write turn until commit."""
    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        """Keep other ledger writers out (opening, schema creation) without a transaction."""

    # reads
    def size(self) -> int: ...
    def last_ts(self) -> str | None: ...
    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]: ...
    def stored_hash_count(self) -> int: ...
    def head(self) -> merkle.Frontier: ...
    def get(self, seq: int) -> LedgerRow | None: ...
    def scan_page(self, *, kinds: Sequence[str] | None, since_ts: str | None, after: int,
                  stop: int | None, limit: int) -> list[LedgerRow]: ...
    def checkpoint_rows(self, *, latest_only: bool = False) -> list[tuple[int, bytes, str]]: ...
    def checkpoint_table(self) -> list[tuple[int, bytes, str, str]]:
        """Every stored checkpoint as (tree_size, root_hash, ts, note), by size."""

    # the audit's streams
    def leaf_rows(self) -> Rows:
        """(seq, payload bytes, leaf_hash) of every row by seq."""
    def hash_rows(self) -> Rows:
        """(idx, hash) of every stored hash by index."""
    def checkpoint_roots(self) -> Iterator[tuple[int, bytes]]:
        """(tree_size, root_hash) of every stored checkpoint by size, streamed."""
    def checkpoint_notes(self, lo: int, hi: int) -> Iterator[tuple[int, bytes, str]]:
        """Stored checkpoints with ``lo < tree_size <= hi``, by size, streamed."""
    def checkpoint_note(self, size: int) -> str | None: ...
    def checkpoint_sizes(self) -> tuple[int, int | None, int | None]:
        """(count, median size, last size) of the stored checkpoints."""
    def first_column_mismatch(self, size: int) -> int | None:
        """The first seq < size whose columns differ from its payload's fields (or whose
        payload is not a JSON entry), computed in the database; None if none."""
    def integrity_check(self) -> list[str]:
        """The database engine's own consistency check; [] when it finds nothing."""

    # writes, inside transaction(write=True)
    def insert(self, rows: Sequence[tuple[object, ...]], first_index: int,
               hashes: Sequence[bytes]) -> None: ...
    def insert_checkpoint(self, size: int, root: bytes, ts: str, note: str) -> None: ...


def is_url(location: Location) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def parse_location(db: str | os.PathLike[str]) -> Location:
    """A ``--db`` value: a PostgreSQL URL stays a string, anything else is a file path."""
    text = os.fspath(db)
    return text if is_url(text) else Path(text)


def ledger_location(home: Home, db: str | os.PathLike[str] | None = None) -> Location:
    """``--db`` if given, else ``database_url`` if set, else the home's SQLite file
    (``$AURORA_LEDGER_DB`` or ``ops/data/remembrancer.db``)."""
    if db is not None:
        return parse_location(db)
    from aurora.config import load_stack

    return load_stack(home).database_url or home.ledger_db


def describe(location: Location) -> str:
    if isinstance(location, Path):
        return str(location)
    from aurora.db.postgres import redact

    return redact(location)


def exists(location: Location) -> bool:
    """Whether a ledger is there to read (a file exists, or PostgreSQL holds the tables)."""
    if isinstance(location, Path):
        return location.exists()
    from aurora.db.postgres import DatabaseError
    from aurora.db.schema import existing_tables

    try:
        return "audit_log" in existing_tables(location)
    except DatabaseError:
        return False


def home_ledger_exists(home: Home) -> bool:
    return exists(ledger_location(home))


def same_location(a: Location, b: Location) -> bool:
    if isinstance(a, Path) and isinstance(b, Path):
        return a.resolve() == b.resolve()
    return a == b


def checkpoint_path(home: Home, db: str | os.PathLike[str] | None) -> Path:
    """Where the latest checkpoint of this ledger is written.

    The home's ledger uses ``ops/data/checkpoint``; any other database file (a
    copy, a test log) gets ``<db>.checkpoint``, any other PostgreSQL database
    ``ops/data/checkpoint-<hash of its URL>``, so neither overwrites the home's.
    """
    if db is None:
        return home.checkpoint_file
    location = parse_location(db)
    if same_location(location, ledger_location(home)):
        return home.checkpoint_file
    if isinstance(location, Path):
        return Path(f"{location}.checkpoint")
    digest = hashlib.sha256(location.encode()).hexdigest()[:12]
    return home.data_dir / f"checkpoint-{digest}"


class ReadStores(Protocol):
    """Where a ledger's reading threads get a read-only store, one read at a time."""

    def borrow(self) -> contextlib.AbstractContextManager[LedgerStore]:
        """A store for one read (a snapshot transaction, a page); given back after."""
    def close(self) -> None: ...


def open_readers(location: Location) -> ReadStores:
    """SQLite: a file connection per thread (cheap, and WAL readers never block);
    PostgreSQL: a small bounded pool, so a replica's many request threads hold a few
    server connections between them, not one each."""
    if isinstance(location, Path):
        from aurora.ledger.sqlitestore import SqliteReaders

        return SqliteReaders(location)
    from aurora.ledger.pgstore import PgReaders

    return PgReaders(location)


def open_store(location: Location, *, readonly: bool) -> LedgerStore:
    if isinstance(location, Path):
        from aurora.ledger.sqlitestore import SqliteStore

        return SqliteStore(location, readonly=readonly)
    from aurora.ledger.pgstore import PgStore

    return PgStore(location, readonly=readonly)
