"""The Ledger API: appends and receipts, group commit, reads, proofs, checkpoints."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
from pathlib import Path

import pytest
from ledger_support import ORIGIN, both, fill, raw_sql

from aurora.errors import KeyFileError
from aurora.home import Home
from aurora.keys import Ed25519PrivateKey
from aurora.ledger import (
    Entry,
    KeyMismatchError,
    Ledger,
    LedgerClosedError,
    LedgerDatabaseError,
    RangeError,
    ReadOnlyError,
    merkle,
)
from aurora.ledger.note import Checkpoint, Verifier, open_checkpoint, parse_note, vkey_for
from aurora.wire import parse_rfc3339


def naive_root(payloads: list[bytes]) -> bytes:
    level = [hashlib.sha256(b"\x00" + p).digest() for p in payloads]
    if not level:
        return hashlib.sha256(b"").digest()

    def mth(items: list[bytes]) -> bytes:
        if len(items) == 1:
            return items[0]
        k = 1 << ((len(items) - 1).bit_length() - 1)
        return hashlib.sha256(b"\x01" + mth(items[:k]) + mth(items[k:])).digest()

    return mth(level)


@both
def test_append_returns_a_verifiable_receipt(ledger: Ledger, verifier: Verifier) -> None:
    receipt = ledger.append(Entry(kind="order", treaty_id="AURORA-AKASH-001",
                                  tenant_id="tenant-42", subject="nonce-1234",
                                  data={"gpu_hours": 2.5}))
    assert (receipt.leaf_index, receipt.tree_size) == (0, 1)
    assert receipt.entry["kind"] == "order" and receipt.entry["subject"] == "nonce-1234"
    assert receipt.entry["ts"].endswith("Z") and len(receipt.entry["ts"]) == 27
    parse_rfc3339(receipt.entry["ts"])
    receipt.verify([verifier], ORIGIN)
    row = ledger.get(0)
    assert row.payload == receipt.payload() and row.leaf_hash.hex() == receipt.leaf_hash
    assert row.entry == receipt.entry and row.data == {"gpu_hours": 2.5}
    assert receipt.to_json()["proof"] == [] and receipt.to_json()["checkpoint"].startswith(ORIGIN)


@both
def test_concurrent_appenders_get_one_gap_free_order(ledger: Ledger, verifier: Verifier) -> None:
    receipts = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        for i in range(40):
            receipt = ledger.append(Entry(kind="note", data={"w": worker, "i": i}))
            with lock:
                receipts.append(receipt)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.leaf_index for r in receipts) == list(range(320))
    head = ledger.tree_head()
    assert head.size == 320
    assert head.root == naive_root([row.payload for row in ledger.scan()])
    for receipt in receipts:
        receipt.verify([verifier], ORIGIN)
        # each receipt's tree is a prefix of the final one
        if receipt.tree_size < head.size:
            ledger.consistency_proof(receipt.tree_size).verify()
    batches = {r.tree_size for r in receipts}
    assert len(batches) < 320  # group commit: several appends shared a transaction


def test_submit_from_asyncio(ledger: Ledger) -> None:
    async def main() -> list[int]:
        futures = [asyncio.wrap_future(ledger.submit(Entry(kind="note", data={"i": i})))
                   for i in range(20)]
        return [receipt.leaf_index for receipt in await asyncio.gather(*futures)]

    assert sorted(asyncio.run(main())) == list(range(20))


@both
def test_receipt_proofs_equal_proofs_read_from_the_database(ledger: Ledger) -> None:
    fill(ledger, 37)
    futures = [ledger.submit(Entry(kind="note", data={"j": j})) for j in range(50)]
    for future in futures:
        receipt = future.result()
        from_db = ledger.inclusion_proof(receipt.leaf_index, receipt.tree_size)
        assert [h.hex() for h in from_db.proof] == receipt.proof
        assert from_db.root_hash.hex() == receipt.root_hash


@both
def test_proofs_and_tree_head(ledger: Ledger) -> None:
    fill(ledger, 100)
    payloads = [row.payload for row in ledger.scan()]
    head = ledger.tree_head()
    assert head.to_json() == {"tree_size": 100, "root_hash": naive_root(payloads).hex()}
    for index, size in ((0, 1), (5, 17), (99, 100), (64, 65)):
        proof = ledger.inclusion_proof(index, size)
        proof.verify()
        assert proof.root_hash == naive_root(payloads[:size])
        assert proof.leaf_hash == merkle.leaf_hash(payloads[index])
    assert ledger.inclusion_proof(3).tree_size == 100
    for old, new in ((1, 100), (7, 8), (64, 100), (100, 100)):
        cons = ledger.consistency_proof(old, new)
        cons.verify()
        assert cons.old_root == naive_root(payloads[:old])
    for call in (lambda: ledger.inclusion_proof(100), lambda: ledger.inclusion_proof(0, 101),
                 lambda: ledger.inclusion_proof(-1), lambda: ledger.consistency_proof(0),
                 lambda: ledger.consistency_proof(5, 101), lambda: ledger.get(100)):
        with pytest.raises(RangeError, match="beyond the tree|between"):
            call()


@both
def test_scan_filters(ledger: Ledger) -> None:
    fill(ledger, 1100, kind="order")
    middle = ledger.get(600).ts
    fill(ledger, 10, kind="decision")
    fill(ledger, 5, kind="drop")
    assert len(list(ledger.scan())) == 1115  # more than one page
    decisions = list(ledger.scan(kinds=("decision", "drop")))
    assert [r.kind for r in decisions] == ["decision"] * 10 + ["drop"] * 5
    assert [r.seq for r in decisions] == list(range(1100, 1115))
    recent = list(ledger.scan(kinds=["order"], since_ts=middle))
    assert recent[0].ts >= middle and all(r.kind == "order" for r in recent)
    assert [r.seq for r in ledger.scan(start_seq=5, stop_seq=9)] == [5, 6, 7, 8]
    assert list(ledger.scan(kinds=[])) == []
    whole_second = middle[:19] + "Z"  # no fraction: still compared as a time
    assert list(ledger.scan(since_ts=whole_second))[0].ts >= whole_second[:19]
    with pytest.raises(RangeError):
        list(ledger.scan(since_ts="yesterday"))
    seqs = [r.seq for r in ledger.scan()]
    ts = [r.ts for r in ledger.scan()]
    assert seqs == sorted(seqs) and ts == sorted(ts)  # ts never goes back


@both
def test_checkpoints_are_persisted_every_few_seconds_not_per_batch(home: Path,
                                                                    verifier: Verifier) -> None:
    with Ledger.open(home, checkpoint_every=3600) as ledger:
        fill(ledger, 5)
        fill(ledger, 5)
        stored = ledger.checkpoints()
        assert [c.tree_size for c in stored] == [5]  # the first batch, then every hour
        note = ledger.checkpoint()
        assert open_checkpoint(note, [verifier], ORIGIN).size == 10
        fill(ledger, 3)
    with Ledger.open(home, readonly=True) as reader:
        sizes = [c.tree_size for c in reader.checkpoints()]
        assert sizes == [5, 10, 13]  # close() stored the last one
        latest = reader.latest_checkpoint()
        assert latest is not None and open_checkpoint(latest, [verifier]).size == 13
    on_disk = Home(home).checkpoint_file.read_text()
    assert open_checkpoint(on_disk, [verifier], ORIGIN).size == 13


def test_idle_writer_persists_its_pending_checkpoint(home: Path) -> None:
    with Ledger.open(home, checkpoint_every=0.2) as ledger:
        fill(ledger, 2)
        fill(ledger, 2)
        deadline = threading.Event()
        for _ in range(50):
            if [c.tree_size for c in ledger.checkpoints()] == [2, 4]:
                break
            deadline.wait(0.05)
        assert [c.tree_size for c in ledger.checkpoints()] == [2, 4]


@both
def test_readonly_needs_no_private_key(home: Path, ledger: Ledger) -> None:
    fill(ledger, 3)
    ledger.close()
    Home(home).ledger_key.unlink()
    with Ledger.open(home, readonly=True) as reader:
        assert reader.tree_head().size == 3
        with pytest.raises(ReadOnlyError):
            reader.append(Entry(kind="note"))
        with pytest.raises(ReadOnlyError):
            reader.checkpoint()
    with pytest.raises(KeyFileError, match="missing"):
        Ledger.open(home)


def test_signing_key_must_match_the_published_vkey(home: Path) -> None:
    other = vkey_for(ORIGIN, Ed25519PrivateKey.generate().public_key())
    Home(home).ledger_vkey.write_text(other + "\n")
    with pytest.raises(KeyMismatchError, match="does not match"):
        Ledger.open(home)


@pytest.mark.sqlite_mode
def test_readonly_open_of_a_missing_database(home: Path) -> None:
    with pytest.raises(LedgerDatabaseError, match="no ledger database"):
        Ledger.open(home, readonly=True)


def test_corrupt_and_foreign_databases_are_refused_untouched(home: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database" * 100)
    before = corrupt.read_bytes()
    for readonly in (False, True):
        with pytest.raises(LedgerDatabaseError, match="corrupt or not a SQLite"):
            Ledger.open(home, db=corrupt, readonly=readonly)
    assert corrupt.read_bytes() == before
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(LedgerDatabaseError, match="not an Aurora ledger"):
        Ledger.open(home, db=foreign)


@pytest.mark.sqlite_mode
def test_a_table_only_copy_cannot_be_appended_to(home: Path, ledger: Ledger, db: Path,
                                                 tmp_path: Path) -> None:
    fill(ledger, 4)
    copy = tmp_path / "copy.db"
    conn = sqlite3.connect(copy)
    conn.execute(f"ATTACH '{db}' AS src")
    conn.execute("CREATE TABLE audit_log AS SELECT * FROM src.audit_log")
    conn.commit()
    conn.close()
    with pytest.raises(LedgerDatabaseError, match="stored hashes"):
        Ledger.open(home, db=copy)


@both
def test_two_writers_on_one_database_interleave_without_gaps(home: Path, db: Path,
                                                             verifier: Verifier) -> None:
    # Two Ledger objects behave like two processes: separate connections and caches.
    with Ledger.open(home) as first, Ledger.open(home) as second:
        receipts = []
        for i in range(30):
            writer = first if i % 3 else second
            receipts.append(writer.append(Entry(kind="note", data={"i": i})))
        assert [r.leaf_index for r in receipts] == list(range(30))
        for receipt in receipts:
            receipt.verify([verifier])
        assert first.tree_head() == second.tree_head()


def test_closed_ledger_refuses_appends(home: Path) -> None:
    ledger = Ledger.open(home)
    fill(ledger, 1)
    ledger.close()
    ledger.close()  # idempotent
    with pytest.raises(LedgerClosedError):
        ledger.append(Entry(kind="note"))


@pytest.mark.sqlite_mode
def test_append_only_at_the_database_level(ledger: Ledger, db: Path) -> None:
    fill(ledger, 2)
    conn = sqlite3.connect(db)
    for statement in ("UPDATE audit_log SET kind = 'x'", "DELETE FROM merkle_hashes",
                      "DELETE FROM checkpoints"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(statement)
    conn.close()


@both
def test_a_failed_commit_fails_its_callers_and_the_writer_recovers(ledger: Ledger,
                                                                   db: Path) -> None:
    fill(ledger, 3)
    raw_sql(db, "ALTER TABLE merkle_hashes RENAME TO hidden")
    with pytest.raises(LedgerDatabaseError):
        ledger.append(Entry(kind="note"))
    raw_sql(db, "ALTER TABLE hidden RENAME TO merkle_hashes")
    assert ledger.append(Entry(kind="note")).leaf_index == 3  # nothing half-written


@both
def test_extend_is_the_bulk_path(ledger: Ledger, verifier: Verifier) -> None:
    head = ledger.extend(Entry(kind="note", data={"i": i}) for i in range(250))
    assert head == ledger.tree_head() and head.size == 250
    latest = ledger.latest_checkpoint()
    assert latest is not None
    body = Checkpoint.parse(parse_note(latest).text)
    assert (body.size, body.root) == (250, head.root)
