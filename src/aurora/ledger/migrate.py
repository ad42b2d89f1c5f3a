"""``aurora ledger migrate --to URL``: copy a ledger between stores (SQLite <-> PostgreSQL).

Every leaf row, stored hash and signed checkpoint is copied as it is (nothing is
re-signed or re-hashed), from one read snapshot of the source, into a target that
must be empty. The copy is then proven rather than trusted: verify-audit runs on
the target (every recomputed root equals every copied signed checkpoint), its root
must equal the source's, and a ``migrate`` entry appended to the target gets a new
signed checkpoint, linked to the source's last one by a verified consistency proof.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from aurora.home import Home
from aurora.ledger import merkle
from aurora.ledger.audit import audit
from aurora.ledger.entry import Entry
from aurora.ledger.errors import LedgerDatabaseError, LedgerError
from aurora.ledger.files import load_verifier, origin
from aurora.ledger.note import open_checkpoint
from aurora.ledger.storage import (
    LedgerStore,
    Location,
    describe,
    ledger_location,
    open_store,
    parse_location,
    same_location,
)

CHUNK = 20_000

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class MigrateInfo:
    source: str
    target: str
    tree_size: int
    root_hash: str
    checkpoints: int
    last_checkpoint_before: int
    first_checkpoint_after: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _refuse_non_empty(target: LedgerStore) -> None:
    if target.size() or target.stored_hash_count() or target.checkpoint_table():
        raise LedgerDatabaseError(f"{target.location} already holds a ledger "
                                  f"({target.size()} entries): refusing to migrate into it")


def _copy(source: LedgerStore, target: LedgerStore, progress: Progress | None) -> int:
    with source.transaction(write=False):  # one snapshot of the source
        size = source.size()
        checkpoints = source.checkpoint_table()
        if source.stored_hash_count() != merkle.stored_hash_count(size):
            raise LedgerDatabaseError(f"{source.location} lacks stored hashes (a copy of "
                                      "audit_log only?): verify it, it cannot be migrated")
        done = 0
        while done < size:
            rows = source.scan_page(kinds=None, since_ts=None, after=done - 1, stop=None,
                                    limit=CHUNK)
            if not rows or rows[0].seq != done:
                raise LedgerDatabaseError(f"{source.location}: row {done} is missing "
                                          "(run `aurora ledger verify-audit`)")
            first = merkle.stored_hash_count(done)
            last = merkle.stored_hash_count(done + len(rows))
            hashes = source.read_hashes(list(range(first, last)))
            values = [(r.seq, r.ts, r.kind, r.treaty_id, r.tenant_id, r.subject,
                       r.payload.decode("utf-8"), r.leaf_hash) for r in rows]
            with target.transaction(write=True):
                if done == 0:
                    _refuse_non_empty(target)
                target.insert(values, first, hashes)
            done += len(rows)
            if progress is not None:
                progress(done, size)
    with target.transaction(write=True):
        if size == 0:
            _refuse_non_empty(target)
        for tree_size, root, ts, note in checkpoints:
            target.insert_checkpoint(tree_size, root, ts, note)
    return size


def migrate(home: Home, to: str | os.PathLike[str], *, db: str | os.PathLike[str] | None = None,
            progress: Progress | None = None) -> MigrateInfo:
    """Copy the ledger at ``db`` (default: the configured one) into the empty ``to``."""
    from aurora.ledger.ledger import Ledger

    source_at: Location = ledger_location(home, db)
    target_at: Location = parse_location(to)
    if same_location(source_at, target_at):
        raise LedgerDatabaseError("the source and the target of a migration are the same")
    verifier = load_verifier(home)
    name = origin(home)
    before = audit(source_at, [verifier], origin=name)  # never copy a tampered log
    if before.tree_size and before.latest_signed_size is None:
        raise LedgerDatabaseError(f"{describe(source_at)} holds no signed checkpoint: run "
                                  "`aurora ledger checkpoint` on it first")
    source = open_store(source_at, readonly=True)
    try:
        target = open_store(target_at, readonly=False)
        try:
            target.create_schema()
            with target.transaction(write=False):
                _refuse_non_empty(target)
            size = _copy(source, target, progress)
            last_before = source.checkpoint_rows(latest_only=True)
        finally:
            target.close()
    finally:
        source.close()
    after = audit(target_at, [verifier], origin=name)
    if (after.tree_size, after.root) != (before.tree_size, before.root):
        raise LedgerError(f"the migrated ledger's root at size {after.tree_size} differs from "
                          "the source's")
    old_size = last_before[0][0] if last_before else 0
    with Ledger.open(home, db=os.fspath(target_at)) as moved:
        moved.append(Entry(kind="migrate", data={
            "from": describe(source_at), "tree_size": size, "root_hash": before.root.hex()}))
        note = moved.checkpoint()
        new = open_checkpoint(note, [verifier], name)
        if old_size:
            proof = moved.consistency_proof(old_size, new.size)
            old_root = open_checkpoint(last_before[0][2], [verifier], name).root
            merkle.verify_consistency(old_size, new.size, old_root, new.root, list(proof.proof))
    return MigrateInfo(describe(source_at), describe(target_at), size, before.root.hex(),
                       after.checkpoints_verified, old_size, new.size)
