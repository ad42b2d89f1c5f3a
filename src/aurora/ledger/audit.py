"""``verify-audit``: re-derive the whole log from its payloads in one streaming pass.

For every row, in seq order: seq has no gap, the leaf hash is recomputed from
the payload and compared with the ``leaf_hash`` column and the stored hash, the
other columns are compared with the payload's fields, and every interior hash
the leaf completes is recomputed and compared with the next stored hash (stored
hashes are written in index order, so this is a merge of two sorted streams).
Every stored checkpoint and the checkpoint file are verified against the
verifier key and their roots compared with the recomputed root at their size.

Memory stays flat (a frontier of log2(n) hashes); a log copied without its
``merkle_hashes`` table (``.dump audit_log``) is still verified, from payloads
and the checkpoints alone.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aurora.ledger import merkle
from aurora.ledger.entry import LedgerRow
from aurora.ledger.errors import NoteError, TamperedError
from aurora.ledger.note import Checkpoint, Verifier, open_checkpoint, parse_note
from aurora.ledger.storage import LedgerStore, Location, open_store

ENTRY_KEYS = frozenset({"seq", "ts", "kind", "treaty_id", "tenant_id", "subject", "data"})
COLUMNS = ("seq", "ts", "kind", "treaty_id", "tenant_id", "subject")
PROGRESS_EVERY = 1 << 16

Progress = Callable[[int, int], None]  # (leaves done, total)


@dataclass
class AuditReport:
    """What a successful audit established."""

    tree_size: int
    root: bytes
    stored_hashes_checked: int
    checkpoints_verified: int
    latest_signed_size: int | None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def unsigned_tail(self) -> int:
        return self.tree_size - (self.latest_signed_size or 0)

    def to_json(self) -> dict[str, Any]:
        return {"ok": True, "tree_size": self.tree_size, "root_hash": self.root.hex(),
                "stored_hashes_checked": self.stored_hashes_checked,
                "checkpoints_verified": self.checkpoints_verified,
                "latest_signed_size": self.latest_signed_size,
                "unsigned_tail": self.unsigned_tail, "warnings": self.warnings,
                "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class _Anchor:
    """A signed tree head: the recomputed root at ``size`` must equal ``root``."""

    size: int
    root: bytes
    source: str


def _open_anchor(note: str, source: str, verifiers: Sequence[Verifier],
                 origin: str | None) -> _Anchor:
    try:
        checkpoint = open_checkpoint(note, verifiers, origin)
    except NoteError as exc:
        raise TamperedError(None, f"{source} does not verify: {exc}") from None
    return _Anchor(checkpoint.size, checkpoint.root, source)


def _anchors(store: LedgerStore, external: _Anchor | None) -> Iterator[_Anchor]:
    """Stored checkpoints (their columns; ``_SideChecks`` verifies the notes) and the
    external one, by size, streamed: a week of checkpoints every 5 s is 120k rows."""
    stored = (_Anchor(size, root, f"stored checkpoint at size {size}")
              for size, root in store.checkpoint_roots())
    return heapq.merge(stored, [external] if external else [], key=lambda a: a.size)


CHUNK = 4096


class _Beside(threading.Thread):
    """Runs one check on its own read-only connection beside the main pass; the database
    (SQLite in C, or the PostgreSQL server) and libsodium release the GIL, so this work
    uses the other core."""

    def __init__(self, location: Location,
                 work: Callable[[LedgerStore], TamperedError | None]) -> None:
        super().__init__(name="ledger-audit", daemon=True)
        self.location = location
        self.work = work
        self.found: TamperedError | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            store = open_store(self.location, readonly=True)
            try:
                with store.errors():
                    self.found = self.work(store)
            finally:
                store.close()
        except BaseException as exc:  # noqa: BLE001 - re-raised by the auditing thread
            self.error = exc


def _check_columns(store: LedgerStore, size: int) -> TamperedError | None:
    seq = store.first_column_mismatch(size)
    return None if seq is None else _column_error(store, seq)


def _check_notes(store: LedgerStore, lo: int, hi: int, verifiers: Sequence[Verifier],
                 origin: str | None) -> TamperedError | None:
    """Verify the signed note of every stored checkpoint with ``lo < tree_size <= hi``."""
    for size, root, note in store.checkpoint_notes(lo, hi):
        source = f"stored checkpoint at size {size}"
        if origin is not None:
            expected = Checkpoint(origin, size, bytes(root))
            if any(v.verify_checkpoint_note(note, expected) for v in verifiers):
                continue  # the note is exactly the columns, signed by a trusted key
        try:
            checkpoint = open_checkpoint(note, verifiers, origin)
        except NoteError as exc:
            return TamperedError(None, f"{source} does not verify: {exc}")
        if (checkpoint.size, checkpoint.root) != (size, bytes(root)):
            return TamperedError(None, f"{source}: its columns differ from its signed note")
    return None


def _note_ranges(store: LedgerStore) -> list[tuple[int, int]]:
    """Size ranges splitting the stored checkpoints among threads (a week of them, one
    per 5 s, is 120k signatures: most of an audit's work beside the hashing)."""
    count, middle, last = store.checkpoint_sizes()
    if not count or middle is None or last is None:
        return []
    if count < 2000:
        return [(-1, last)]
    return [(-1, middle), (middle, last)]


class _Audit:
    """The streaming pass over leaves, stored hashes and signed tree heads."""

    def __init__(self, store: LedgerStore, anchors: Iterator[_Anchor], total: int,
                 progress: Progress | None) -> None:
        self.store = store
        self.total = total
        self.progress = progress
        self.anchors = anchors
        self.next_anchor = next(anchors, None)
        self.frontier = merkle.Frontier()
        self.hashes_checked = 0
        self.anchors_checked = 0
        self.matched = 0  # the largest size whose root matched a signed checkpoint

    def take_anchors(self, size: int, root: bytes, into: list[tuple[_Anchor, bytes]]) -> int:
        """Queue the anchors at ``size`` with the root recomputed there; the next due size."""
        while self.next_anchor is not None and self.next_anchor.size == size:
            into.append((self.next_anchor, root))
            self.next_anchor = next(self.anchors, None)
        return -1 if self.next_anchor is None else self.next_anchor.size

    def check_anchors(self, pending: list[tuple[_Anchor, bytes]]) -> None:
        for anchor, root in pending:
            if anchor.root != root:
                self.check_stored_note(anchor)
                # Every stored hash matched the payloads, so they were rewritten to fit:
                # only the signed checkpoints bound where the change is.
                raise TamperedError(
                    self.matched if anchor.size else None,
                    f"the recomputed root at size {anchor.size} differs from the "
                    f"{anchor.source}: a leaf in [{self.matched}, {anchor.size - 1}] was "
                    "changed and its hashes rewritten")
            self.matched = anchor.size
            self.anchors_checked += 1
        pending.clear()

    def check_stored_note(self, anchor: _Anchor) -> None:
        """A root that differs may be an edited checkpoint row rather than edited leaves."""
        if not anchor.source.startswith("stored"):
            return
        note = self.store.checkpoint_note(anchor.size) or ""
        try:
            signed = Checkpoint.parse(parse_note(note).text)
        except NoteError as exc:
            raise TamperedError(None, f"{anchor.source} does not verify: {exc}") from None
        if (signed.size, signed.root) != (anchor.size, anchor.root):
            raise TamperedError(None, f"{anchor.source}: its columns differ from its signed "
                                      "note")

    def run(self, with_hashes: bool) -> None:
        rows_cursor = self.store.leaf_rows()
        hash_cursor = self.store.hash_rows() if with_hashes else None
        pending: list[tuple[_Anchor, bytes]] = []  # compared once the chunk's hashes are
        next_due = self.take_anchors(0, merkle.EMPTY_ROOT, pending)
        self.check_anchors(pending)
        frontier = self.frontier
        stack = frontier.hashes
        sha256 = hashlib.sha256
        size = 0
        next_index = 0
        while rows := rows_cursor.fetchmany(CHUNK):
            if rows[0][0] != size or rows[-1][0] != size + len(rows) - 1:
                _find_gap(rows, size)
            computed: list[bytes] = []
            add = computed.append
            for _, payload, leaf_column in rows:
                leaf = sha256(b"\x00" + payload).digest()
                if leaf != leaf_column:
                    raise TamperedError(size, "leaf_hash column does not match the payload")
                # Frontier.append, inlined: this loop runs once per leaf.
                add(leaf)
                h = leaf
                m = size
                while m & 1:
                    h = sha256(b"\x01" + stack.pop() + h).digest()
                    add(h)
                    m >>= 1
                stack.append(h)
                size += 1
                if size == next_due:
                    frontier.size = size
                    next_due = self.take_anchors(size, frontier.root(), pending)
            frontier.size = size
            if hash_cursor is not None:
                stored = hash_cursor.fetchmany(len(computed))
                _compare_hashes(stored, computed, next_index, size - len(rows))
                next_index += len(computed)
            # Only now: a stored hash that differs names its leaf exactly, which is
            # more precise than a checkpoint root that differs.
            self.check_anchors(pending)
            if self.progress is not None and not (size // CHUNK) % 16:
                self.progress(size, self.total)
        self.hashes_checked = next_index
        if hash_cursor is not None and (extra := hash_cursor.fetchone()) is not None:
            raise TamperedError(size, f"stored hash {extra[0]} lies beyond the last row "
                                      f"(log size {size}): rows at the end were deleted, or "
                                      "hashes added")
        if self.progress is not None:
            self.progress(size, self.total)


def _find_gap(rows: Sequence[tuple[int, bytes, bytes]], start: int) -> None:
    for offset, row in enumerate(rows):
        if row[0] != start + offset:
            raise TamperedError(start + offset, f"row missing (the next row has seq {row[0]})")


def _compare_hashes(stored: Sequence[tuple[int, bytes]], computed: list[bytes],
                    first_index: int, first_leaf: int) -> None:
    """Compare a chunk of stored hashes with the recomputed ones, naming the first bad leaf."""
    if (len(stored) == len(computed) and stored[0][0] == first_index
            and stored[-1][0] == first_index + len(stored) - 1
            and [h for _, h in stored] == computed):
        return
    # Replay the chunk's hash sequence (each leaf adds itself, then one hash per
    # trailing 1 bit of its index) to find which leaf the first difference belongs to.
    pos = 0
    for leaf in itertools.count(first_leaf):
        levels = 1 + ((leaf ^ (leaf + 1)).bit_length() - 1)
        for level in range(levels):
            index = first_index + pos
            what = "leaf hash" if level == 0 else f"interior hash (level {level})"
            if pos >= len(stored):
                raise TamperedError(leaf, f"stored {what} {index} is missing")
            if stored[pos][0] != index:
                raise TamperedError(leaf, f"stored {what} {index} is missing (next stored "
                                          f"index is {stored[pos][0]})")
            if stored[pos][1] != computed[pos]:
                raise TamperedError(leaf, f"stored {what} at index {index} differs from the "
                                          "recomputed one")
            pos += 1


def row_problem(row: LedgerRow) -> str | None:
    """Which column of a row disagrees with its payload, if any (the slow, exact check)."""
    try:
        entry = json.loads(row.payload)
    except ValueError:
        return "payload is not JSON"
    if not isinstance(entry, dict) or set(entry) != ENTRY_KEYS:
        return "payload is not a ledger entry (wrong fields)"
    for name in COLUMNS:
        column = getattr(row, name)
        if entry[name] != column or type(entry[name]) is not type(column):
            return f"column {name} = {column!r} differs from the payload's {entry[name]!r}"
    return None


def _column_error(store: LedgerStore, seq: int) -> TamperedError:
    """Say which column of row ``seq`` disagrees with its payload."""
    row = store.get(seq)
    assert row is not None
    return TamperedError(seq, row_problem(row) or "columns differ from the payload")


def audit(location: Location, verifiers: Sequence[Verifier], *, origin: str | None = None,
          checkpoint_note: tuple[str, str] | None = None,
          progress: Progress | None = None) -> AuditReport:
    """Verify a ledger database (a SQLite file or a PostgreSQL URL); raise TamperedError
    with the first bad leaf index.

    ``checkpoint_note`` is an extra (note text, where it came from) to check, e.g.
    ``ops/data/checkpoint``. If it names a tree larger than the database, the
    database was rolled back (restored from a backup): a warning, not tampering,
    since nothing in the database itself contradicts it.
    """
    started = time.perf_counter()
    store = open_store(location, readonly=True)
    warnings: list[str] = []
    try:
        store.check_schema()
        with store.transaction(write=False):  # one snapshot, while writers carry on
            tables = store.tables()
            total = store.size()
            external = None
            if checkpoint_note is not None:
                external = _open_anchor(*checkpoint_note, verifiers, origin)
                if external.size > total:
                    warnings.append(
                        f"{external.source} is for tree size {external.size} but the "
                        f"database holds {total} entries: it was rolled back (restored from a "
                        "backup?) or its tail was removed")
                    external = None
            with_hashes = "merkle_hashes" in tables and store.stored_hash_count() > 0
            if total and not with_hashes:
                warnings.append("stored hashes absent (a copy of audit_log only?): every hash "
                                "was recomputed from the payloads")
            with store.errors():
                ranges = _note_ranges(store)
            checks = [_Beside(location, partial(_check_columns, size=total))] + [
                _Beside(location, partial(_check_notes, lo=lo, hi=hi, verifiers=verifiers,
                                      origin=origin)) for lo, hi in ranges]
            for check in checks:
                check.start()
            run = _Audit(store, _anchors(store, external), total, progress)
            try:
                run.run(with_hashes)
            except TamperedError as exc:
                columns = checks[0]
                columns.join()
                found = columns.found
                if found is not None and found.index is not None and exc.index is not None \
                        and found.index < exc.index:
                    raise found from None
                raise
            for check in checks:
                check.join()
                if check.error is not None:
                    raise check.error
            for check in checks:  # the column check first: it names a leaf
                if check.found is not None:
                    raise check.found
            size = run.frontier.size
            if size != total:
                raise TamperedError(size, f"log ends at {size} rows but its last seq is "
                                          f"{total - 1}")
            beyond = run.next_anchor
            if beyond is not None:  # a signed size past the end: rows were deleted
                raise TamperedError(total, f"log ends at size {total} but the {beyond.source} "
                                           f"signs size {beyond.size}: entries were deleted")
    finally:
        store.close()
    signed = run.matched if run.anchors_checked else None
    if signed is None:
        warnings.append("no signed checkpoint covers this log yet")
    elif signed < size:
        warnings.append(f"{size - signed} entries after the latest signed checkpoint "
                        f"(size {signed}) are not yet covered by a signature")
    return AuditReport(size, run.frontier.root(), run.hashes_checked, run.anchors_checked,
                       signed, warnings, time.perf_counter() - started)
