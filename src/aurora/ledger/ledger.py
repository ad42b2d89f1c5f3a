"""The Remembrancer: an append-only, verifiable ledger over one SQLite file or PostgreSQL.

Writes go through one writer thread per ``Ledger`` (group commit): appenders put
prepared entries on a queue and wait on a future; the writer drains the queue,
takes the database's write turn (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: the
tree-state row ``FOR UPDATE``), numbers the entries from the current size,
inserts them with their stored hashes and commits once, so concurrent appenders
share one fsync. Other processes (on other machines, with PostgreSQL) may append
to the same ledger: when the size under the lock differs from the writer's
cached frontier, the frontier is reloaded from stored hashes (O(log n)). All
SQL is behind ``storage.LedgerStore``.

Each batch is signed once (an in-memory checkpoint for its receipts); the
checkpoint row and ``ops/data/checkpoint`` are written at most every
``checkpoint_every`` seconds, on ``checkpoint()`` and on ``close()``.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import logging
import math
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from aurora.durable import FileLock, file_lock
from aurora.ledger import merkle
from aurora.ledger.entry import (
    ConsistencyProof,
    Entry,
    InclusionProof,
    LedgerRow,
    PreparedEntry,
    Receipt,
    TreeHead,
    prepare,
)
from aurora.ledger.errors import (
    EntryError,
    LedgerClosedError,
    LedgerDatabaseError,
    LedgerError,
    RangeError,
    ReadOnlyError,
)
from aurora.ledger.files import (
    HomeLike,
    load_signer,
    move_aside,
    now_rfc3339,
    read_checkpoint,
    resolve_home,
    write_checkpoint_file,
    writer_lock,
)
from aurora.ledger.note import Checkpoint, Signer, sign_checkpoint
from aurora.ledger.storage import (
    LedgerStore,
    Location,
    ReadStores,
    checkpoint_path,
    describe,
    ledger_location,
    open_readers,
    open_store,
)
from aurora.wire import format_rfc3339, parse_rfc3339

DEFAULT_CHECKPOINT_EVERY = 5.0
DEFAULT_MAX_BATCH = 2048
EXTEND_CHUNK = 20_000
SCAN_PAGE = 1000


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    tree_size: int
    root_hash: bytes
    note: str


@dataclass(frozen=True, slots=True)
class _Batch:
    """What one append transaction wrote."""

    before: merkle.Frontier
    after: merkle.Frontier
    first_index: int  # stored index of the first new hash
    leaves: list[bytes]
    hashes: list[bytes]
    ts: str


@dataclass(slots=True)
class _Command:
    """Work for the writer thread other than appends (they must not race its connection)."""

    name: str
    future: concurrent.futures.Future[Any]
    arg: Any = None


_Item = tuple[PreparedEntry, "concurrent.futures.Future[Receipt]"] | _Command
_open_writers: weakref.WeakSet[Ledger] = weakref.WeakSet()


@atexit.register
def _close_open_writers() -> None:
    # Appends still queued at interpreter exit are committed (and checkpointed)
    # rather than dropped with the daemon writer thread.
    for ledger in list(_open_writers):
        ledger.close()


def normalise_since(since_ts: str | datetime | None) -> str | None:
    """Any RFC 3339 time as the ledger writes it, so text comparison is time order."""
    if since_ts is None:
        return None
    try:
        moment = since_ts if isinstance(since_ts, datetime) else parse_rfc3339(since_ts)
    except ValueError as exc:
        raise RangeError(f"since_ts {since_ts!r}: {exc}") from None
    return format_rfc3339(moment)


class Ledger:
    """Append entries, read them back, prove them. See ``docs/ARCHITECTURE.md``."""

    def __init__(self, location: Location, *, signer: Signer | None, checkpoint_file: Path,
                 checkpoint_every: float = DEFAULT_CHECKPOINT_EVERY,
                 max_batch: int = DEFAULT_MAX_BATCH) -> None:
        self.location = location
        self.path = describe(location)  # for messages
        self.readonly = signer is None
        self.checkpoint_file = checkpoint_file
        self.checkpoint_every = checkpoint_every
        self._signer = signer
        self._max_batch = max_batch
        self._readers: ReadStores | None = None  # opened on the first read
        self._readers_lock = threading.Lock()
        self._closed = False
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._wstore: LedgerStore | None = None
        self._use_lock: FileLock | None = None
        if signer is None:
            with self._reading() as store:
                store.check_schema()
        else:
            if isinstance(location, Path):
                # Every SQLite writer holds this shared lock for its lifetime; a restore
                # takes it exclusively and refuses while any writer has the file open, so
                # nothing is ever acknowledged into a database that was moved aside.
                # (PostgreSQL serialises writers itself: the tree-state row lock.)
                self._use_lock = writer_lock(location).acquire()
            try:
                self._wstore = open_store(location, readonly=False)
            except BaseException:
                self._release_use_lock()
                raise
            try:
                with self._wstore.exclusive():
                    self._wstore.create_schema()
                    # one snapshot: in PostgreSQL other writers append meanwhile
                    with self._wstore.transaction(write=False):
                        self._check_stored_hashes(self._wstore)
                    self._reconcile_checkpoint_file(self._wstore)
            except BaseException:
                self._wstore.close()
                self._release_use_lock()
                raise
            _open_writers.add(self)
        # Writer-thread state.
        self._frontier: merkle.Frontier | None = None
        self._last_ts = ""
        self._pending: tuple[int, bytes, str] | None = None  # signed, not yet persisted
        self._persisted_size = -1
        self._last_persist = -math.inf  # a new writer persists its first checkpoint at once

    @classmethod
    def open(cls, home: HomeLike = None, *, db: str | os.PathLike[str] | None = None,
             readonly: bool = False, checkpoint_every: float = DEFAULT_CHECKPOINT_EVERY,
             max_batch: int = DEFAULT_MAX_BATCH) -> Ledger:
        """Open (a writer creates) the ledger of ``home``; ``readonly`` needs no private key."""
        where = resolve_home(home)
        signer = None if readonly else load_signer(where)
        return cls(ledger_location(where, db), signer=signer,
                   checkpoint_file=checkpoint_path(where, db),
                   checkpoint_every=checkpoint_every, max_batch=max_batch)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _check_stored_hashes(store: LedgerStore) -> None:
        # the caller holds one read snapshot: replicas may append meanwhile
        size = store.size()
        have = store.stored_hash_count()
        want = merkle.stored_hash_count(size)
        if have != want:
            raise LedgerDatabaseError(
                f"ledger database {store.location} holds {size} entries but {have} of their {want} "
                "stored hashes (a copy of audit_log only?); it can be verified with "
                "`aurora ledger verify-audit --db` but not appended to")

    def _reconcile_checkpoint_file(self, store: LedgerStore) -> None:
        """Move aside a checkpoint file this database does not contain (it was rolled back).

        After a restore of an older backup (the seed's raw ``.restore`` included)
        the file still names a later tree. Left there it would block newer
        checkpoints (an older size never replaces a larger one) and later disagree
        with the new entries, so it is kept as ``checkpoint.superseded-<time>``.
        """
        path = self.checkpoint_file
        with file_lock(path):
            # File first, then the database: a concurrent writer writes the file only
            # after committing, so the database can only be ahead of what was read.
            checkpoint = read_checkpoint(path)
            if checkpoint is None:
                return
            with store.transaction(write=False):
                size = store.size()
                contained = checkpoint.size <= size and merkle.tree_hash(
                    checkpoint.size, store.read_hashes) == checkpoint.root
            if not contained:
                moved = move_aside(path, "superseded")
                _log_warning(f"{path} named tree size {checkpoint.size}, which {store.location} "
                             f"(size {size}) does not contain; kept as {moved}")

    # --- appending ----------------------------------------------------------------------

    def submit(self, entry: Entry) -> concurrent.futures.Future[Receipt]:
        """Queue an entry; the future resolves to its Receipt once the entry is durable.

        Bad entries raise EntryError here, in the caller's thread. Don't mutate
        ``entry.data`` afterwards: the receipt refers to it.
        """
        prepared = prepare(entry)
        if isinstance(self.location, str):
            _check_text_columns(prepared)
        future: concurrent.futures.Future[Receipt] = concurrent.futures.Future()
        self._put((prepared, future))
        return future

    def append(self, entry: Entry) -> Receipt:
        """Append one entry and return its receipt once it is durable (fsynced)."""
        return self.submit(entry).result()

    def extend(self, entries: Iterable[Entry]) -> TreeHead:
        """Append many entries in large transactions (no receipts): imports, benchmarks."""
        return self._command("extend", entries)  # type: ignore[no-any-return]

    def checkpoint(self) -> str:
        """Sign the current tree head, store it and write the checkpoint file; return the note."""
        return self._command("checkpoint")  # type: ignore[no-any-return]

    def _command(self, name: str, arg: Any = None) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._put(_Command(name, future, arg))
        return future.result()

    def _put(self, item: _Item) -> None:
        if self.readonly:
            raise ReadOnlyError(f"ledger {self.path} is open read-only")
        with self._writer_lock:
            if self._closed:
                raise LedgerClosedError(f"ledger {self.path} is closed")
            if self._writer is None:
                self._writer = threading.Thread(target=self._writer_main, daemon=True,
                                                name="ledger-writer")
                self._writer.start()
            self._queue.put(item)

    def close(self) -> None:
        """Commit what is queued, persist the latest checkpoint, close connections."""
        with self._writer_lock:
            if self._closed:
                return
            self._closed = True
            writer = self._writer
            if writer is not None:
                self._queue.put(None)
        if writer is not None:
            writer.join()
        elif self._wstore is not None:
            self._wstore.close()
        with self._readers_lock:
            if self._readers is not None:
                self._readers.close()
                self._readers = None
        self._release_use_lock()
        _open_writers.discard(self)

    def _release_use_lock(self) -> None:
        if self._use_lock is not None:
            self._use_lock.release()
            self._use_lock = None

    # --- the writer thread --------------------------------------------------------------

    def _writer_main(self) -> None:
        assert self._wstore is not None
        try:
            self._run_writer()
        finally:
            self._fail_queued(LedgerClosedError(f"ledger {self.path} is closed"))
            self._wstore.close()

    def _run_writer(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._persist_wait())
            except queue.Empty:
                self._guard([], self._persist_now)
                continue
            items: list[_Item] = [] if item is None else [item]
            stop = item is None or self._drain(items)
            self._process(items)
            if stop:
                self._guard([], self._persist_now)
                return

    def _drain(self, items: list[_Item]) -> bool:
        """Move queued items into ``items`` (up to max_batch); True if close() was queued."""
        while len(items) < self._max_batch:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                return False
            if more is None:
                return True
            items.append(more)
        return False

    def _persist_wait(self) -> float | None:
        if self._pending is None or self._pending[0] == self._persisted_size:
            return None
        return max(0.0, self._last_persist + self.checkpoint_every - time.monotonic())

    def _process(self, items: list[_Item]) -> None:
        """Commit runs of appends as one transaction each; run commands in queue order."""
        run: list[tuple[PreparedEntry, concurrent.futures.Future[Receipt]]] = []
        for item in items:
            if isinstance(item, _Command):
                if run:
                    self._commit_appends(run)
                    run = []
                if item.future.set_running_or_notify_cancel():
                    self._guard([item.future], partial(self._run_command, item))
            elif item[1].set_running_or_notify_cancel():  # skip cancelled appends
                run.append(item)
        if run:
            self._commit_appends(run)

    def _guard(self, futures: Sequence[concurrent.futures.Future[Any]],
               work: Callable[[], object]) -> None:
        """Run ``work``; on failure, fail these futures and forget cached state."""
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting callers
            self._frontier = None  # the database may differ from what we cached
            error = exc if isinstance(exc, LedgerError) else LedgerError(
                f"ledger write failed: {type(exc).__name__}: {exc}")
            if not futures:
                _log_error(error)
            for future in futures:
                if not future.done():
                    future.set_exception(error)

    def _run_command(self, command: _Command) -> None:
        if command.name == "checkpoint":
            command.future.set_result(self._checkpoint_now())
        elif command.name == "extend":
            command.future.set_result(self._extend(command.arg))
        else:
            raise ValueError(command.name)

    def _sync_frontier(self, store: LedgerStore) -> merkle.Frontier:
        """The frontier at the database's current size (call under the write lock)."""
        size = store.size()
        if self._frontier is None or self._frontier.size != size:
            self._frontier = merkle.Frontier.load(size, store.read_hashes)
            self._last_ts = store.last_ts() or ""
        return self._frontier

    def _next_ts(self) -> str:
        # Never earlier than the last entry, so ts order is seq order for since_ts scans.
        ts = max(now_rfc3339(), self._last_ts)
        self._last_ts = ts
        return ts

    def _sign(self, size: int, root: bytes) -> str:
        assert self._signer is not None
        return sign_checkpoint(Checkpoint(self._signer.name, size, root), self._signer)

    def _append_rows(self, store: LedgerStore, prepared: Sequence[PreparedEntry]) -> _Batch:
        """Insert entries at the end of the log (call under the write lock)."""
        before = self._sync_frontier(store)
        after = before.copy()
        first_index = merkle.stored_hash_count(before.size)
        ts = self._next_ts()
        rows = []
        leaves = []
        hashes: list[bytes] = []
        seq = before.size
        leaf_hash = merkle.leaf_hash
        for entry in prepared:
            payload = entry.payload(seq, ts)
            leaf = leaf_hash(payload)
            hashes += after.append(leaf)
            leaves.append(leaf)
            rows.append((seq, ts, entry.kind, entry.treaty_id, entry.tenant_id, entry.subject,
                         payload.decode("utf-8"), leaf))
            seq += 1
        store.insert(rows, first_index, hashes)
        return _Batch(before, after, first_index, leaves, hashes, ts)

    def _commit_appends(self, run: list[tuple[PreparedEntry,
                                              concurrent.futures.Future[Receipt]]]) -> None:
        futures = [future for _, future in run]
        self._guard(futures, lambda: self._commit_and_answer(run))

    def _commit_and_answer(self, run: list[tuple[PreparedEntry,
                                                 concurrent.futures.Future[Receipt]]]) -> None:
        store = self._wstore
        assert store is not None
        prepared = [entry for entry, _ in run]
        with store.transaction(write=True):
            batch = self._append_rows(store, prepared)
            after = batch.after
            root = after.root()
            note = self._sign(after.size, root)
            due = time.monotonic() - self._last_persist >= self.checkpoint_every
            if due:
                store.insert_checkpoint(after.size, root, now_rfc3339(), note)
        self._frontier = after
        self._pending = (after.size, root, note)
        if due:
            self._persisted(after.size, note)
        # Receipts come from memory: the old frontier and this batch's new hashes hold
        # every hash an inclusion proof for a new leaf needs.
        before = batch.before
        known = dict(zip(merkle.Frontier.indexes(before.size), before.hashes, strict=True))
        known.update(zip(range(batch.first_index, batch.first_index + len(batch.hashes)),
                         batch.hashes, strict=True))

        def read(indexes: Sequence[int]) -> list[bytes]:
            try:
                return [known[i] for i in indexes]
            except KeyError:  # not expected; the database has every stored hash
                return store.read_hashes(indexes)

        root_hex = root.hex()
        size = after.size
        proofs = merkle.inclusion_proofs(before.size, size, read)
        for offset, (entry, future) in enumerate(run):
            seq = before.size + offset
            receipt = Receipt(seq, size, batch.leaves[offset].hex(), root_hex,
                              [h.hex() for h in proofs[offset]], note,
                              entry.entry_dict(seq, batch.ts), entry.payload(seq, batch.ts))
            future.set_result(receipt)

    def _persisted(self, size: int, note: str) -> None:
        write_checkpoint_file(self.checkpoint_file, note, size)
        self._persisted_size = size
        self._last_persist = time.monotonic()

    def _persist_now(self) -> None:
        """Store the last signed checkpoint if it is not stored yet (idle timer, close)."""
        if self._pending is None or self._pending[0] == self._persisted_size:
            return
        size, root, note = self._pending
        store = self._wstore
        assert store is not None
        self._last_persist = time.monotonic()  # a failure retries after the interval, no spin
        with store.transaction(write=True):
            store.insert_checkpoint(size, root, now_rfc3339(), note)
        self._persisted(size, note)

    def _checkpoint_now(self) -> str:
        store = self._wstore
        assert store is not None
        with store.transaction(write=True):
            frontier = self._sync_frontier(store)
            root = frontier.root()
            note = self._sign(frontier.size, root)
            store.insert_checkpoint(frontier.size, root, now_rfc3339(), note)
        self._pending = (frontier.size, root, note)
        self._persisted(frontier.size, note)
        return note

    def _extend(self, entries: Iterable[Entry]) -> TreeHead:
        store = self._wstore
        assert store is not None
        chunk: list[PreparedEntry] = []

        def flush() -> None:
            with store.transaction(write=True):
                self._frontier = self._append_rows(store, chunk).after
            chunk.clear()

        for entry in entries:
            chunk.append(prepare(entry))
            if len(chunk) >= EXTEND_CHUNK:
                flush()
        if chunk:
            flush()
        self._checkpoint_now()
        assert self._frontier is not None
        return TreeHead(self._frontier.size, self._frontier.root())

    def _fail_queued(self, error: LedgerError) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is None:
                continue
            future = item.future if isinstance(item, _Command) else item[1]
            if future.set_running_or_notify_cancel():
                future.set_exception(error)

    # --- reading ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self) -> Iterator[LedgerStore]:
        """A read-only store for one read (see ``storage.open_readers``)."""
        with self._readers_lock:
            if self._closed:
                raise LedgerClosedError(f"ledger {self.path} is closed")
            if self._readers is None:
                self._readers = open_readers(self.location)
            readers = self._readers
        with readers.borrow() as store:
            yield store

    def tree_head(self) -> TreeHead:
        with self._reading() as store, store.transaction(write=False):
            frontier = store.head()
        return TreeHead(frontier.size, frontier.root())

    def size(self) -> int:
        with self._reading() as store:
            return store.size()

    def _check_size(self, store: LedgerStore, size: int | None, what: str) -> tuple[int, int]:
        current = store.size()
        if size is None:
            size = current
        if not 0 <= size <= current:
            raise RangeError(f"{what} {size} is beyond the tree (size {current})")
        return size, current

    def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        """Proof that leaf ``index`` is in the tree of ``size`` leaves (default: current)."""
        with self._reading() as store, store.transaction(write=False):
            size, current = self._check_size(store, size, "tree size")
            if not 0 <= index < size:
                raise RangeError(f"leaf index {index} is beyond the tree (size {size})")
            leaf, = store.read_hashes([merkle.stored_hash_index(0, index)])
            root = merkle.tree_hash(size, store.read_hashes)
            proof = merkle.inclusion_proof(index, size, store.read_hashes)
        return InclusionProof(index, size, leaf, root, tuple(proof))

    def consistency_proof(self, old: int, new: int | None = None) -> ConsistencyProof:
        """Proof that the tree of ``old`` leaves is a prefix of the tree of ``new``."""
        with self._reading() as store, store.transaction(write=False):
            new, current = self._check_size(store, new, "new size")
            if not 1 <= old <= new:
                raise RangeError(f"old size {old} must be between 1 and the new size {new}")
            old_root = merkle.tree_hash(old, store.read_hashes)
            new_root = merkle.tree_hash(new, store.read_hashes)
            proof = merkle.consistency_proof(old, new, store.read_hashes)
        return ConsistencyProof(old, new, old_root, new_root, tuple(proof))

    def get(self, seq: int) -> LedgerRow:
        with self._reading() as store:
            row = store.get(seq)
        if row is None:
            raise RangeError(f"leaf index {seq} is beyond the tree (size {self.size()})")
        return row

    def scan(self, kinds: Iterable[str] | None = None, since_ts: str | datetime | None = None,
             start_seq: int = 0, stop_seq: int | None = None) -> Iterator[LedgerRow]:
        """Rows in seq order, filtered by kind and ``ts >= since_ts``.

        Reads page by page (short read transactions), so a long scan neither
        holds a snapshot open nor loads the log into memory.
        """
        kind_list = None if kinds is None else [kinds] if isinstance(kinds, str) else list(kinds)
        if kind_list is not None and not kind_list:
            return
        since = normalise_since(since_ts)
        after = start_seq - 1
        while True:
            with self._reading() as store:
                page = store.scan_page(kinds=kind_list, since_ts=since, after=after,
                                       stop=stop_seq, limit=SCAN_PAGE)
            yield from page
            if len(page) < SCAN_PAGE:
                return
            after = page[-1].seq

    def latest_checkpoint(self) -> str | None:
        """The newest stored signed checkpoint note, or None before the first one."""
        with self._reading() as store:
            rows = store.checkpoint_rows(latest_only=True)
        return rows[0][2] if rows else None

    def checkpoints(self) -> list[StoredCheckpoint]:
        with self._reading() as store:
            rows = store.checkpoint_rows()
        return [StoredCheckpoint(size, root, note) for size, root, note in rows]


def _check_text_columns(entry: PreparedEntry) -> None:
    """PostgreSQL text cannot hold NUL: refuse it here, in the caller's thread, rather
    than fail the whole batch it would be committed with (its payload escapes it)."""
    for name in ("kind", "treaty_id", "tenant_id", "subject"):
        value = getattr(entry, name)
        if isinstance(value, str) and "\x00" in value:
            raise EntryError(f"entry {name} holds a NUL character, which PostgreSQL text "
                             "columns cannot store")


_log = logging.getLogger("aurora.ledger")


def _log_error(error: BaseException) -> None:
    _log.error("ledger writer: %s", error)


def _log_warning(message: str) -> None:
    _log.warning("%s", message)
