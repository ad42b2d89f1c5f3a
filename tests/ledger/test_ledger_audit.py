"""verify-audit: every kind of tampering is found, with the first bad leaf index."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from ledger_support import ORIGIN, CliResult, both, fill, raw_sql

from aurora.home import Home
from aurora.keys import Ed25519PrivateKey
from aurora.ledger import Entry, Ledger, TamperedError
from aurora.ledger.audit import audit
from aurora.ledger.note import Checkpoint, Signer, Verifier, sign_checkpoint

Cli = Callable[..., CliResult]
SIZE = 40


@pytest.fixture
def filled(home: Path, db: Path) -> Path:
    with Ledger.open(home) as ledger:
        fill(ledger, SIZE)
    return db


def run_audit(db: Path, verifier: Verifier, note: str | None = None) -> object:
    anchor = None if note is None else (note, "checkpoint file")
    return audit(db, [verifier], origin=ORIGIN, checkpoint_note=anchor)


@both
def test_clean_log_verifies(filled: Path, verifier: Verifier) -> None:
    report = audit(filled, [verifier], origin=ORIGIN)
    assert report.tree_size == SIZE and report.unsigned_tail == 0
    assert report.stored_hashes_checked == 2 * SIZE - bin(SIZE).count("1")
    assert report.warnings == []


def one_leaf_payload(db: Path, seq: int) -> str:
    conn = sqlite3.connect(db)
    (payload,) = conn.execute("SELECT payload FROM audit_log WHERE seq = ?", (seq,)).fetchone()
    conn.close()
    return str(payload)


TAMPERINGS: dict[str, tuple[list[str], int, str]] = {
    "payload edited": (["UPDATE audit_log SET payload = replace(payload, '\"i\":17', "
                        "'\"i\":71') WHERE seq = 17"], 17, "leaf_hash column"),
    "kind column edited": (["UPDATE audit_log SET kind = 'deploy' WHERE seq = 9"], 9,
                           "column kind"),
    "subject column edited": (["UPDATE audit_log SET subject = NULL WHERE seq = 12"], 12,
                              "column subject"),
    "ts column edited": (["UPDATE audit_log SET ts = '2020-01-01T00:00:00.000000Z' "
                          "WHERE seq = 30"], 30, "column ts"),
    "row deleted": (["DELETE FROM audit_log WHERE seq = 21"], 21, "row missing"),
    "tail deleted": (["DELETE FROM audit_log WHERE seq >= 35"], 35, "deleted"),
    "tail and its hashes deleted": (["DELETE FROM audit_log WHERE seq >= 35",
                                     "DELETE FROM merkle_hashes WHERE idx >= 67"], 35,
                                    "signs size 40: entries were deleted"),
    "leaf hash column edited": (["UPDATE audit_log SET leaf_hash = zeroblob(32) WHERE seq = 3"],
                                3, "leaf_hash column"),
    "interior hash edited": (["UPDATE merkle_hashes SET hash = zeroblob(32) WHERE idx = 6"],
                             3, "interior hash (level 2)"),
    "stored leaf hash edited": (["UPDATE merkle_hashes SET hash = zeroblob(32) WHERE idx = 7"],
                                4, "stored leaf hash"),
    "stored hash deleted": (["DELETE FROM merkle_hashes WHERE idx = 10"], 6, "missing"),
    "stored hash added": (["INSERT INTO merkle_hashes VALUES (100000, zeroblob(32))"], SIZE,
                          "beyond the last row"),
    "rows swapped": (["UPDATE audit_log SET seq = -1 WHERE seq = 5",
                      "UPDATE audit_log SET seq = 5 WHERE seq = 6",
                      "UPDATE audit_log SET seq = 6 WHERE seq = -1"], 5, ""),
    "row appended without hashes": (
        ["INSERT INTO audit_log SELECT seq + 1, ts, kind, treaty_id, tenant_id, subject, "
         "payload, leaf_hash FROM audit_log WHERE seq = 39"], 40, ""),
}


@both
@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_tampering_is_found_at_the_first_bad_leaf(name: str, filled: Path,
                                                  verifier: Verifier) -> None:
    statements, index, what = TAMPERINGS[name]
    raw_sql(filled, *statements)
    with pytest.raises(TamperedError) as caught:
        run_audit(filled, verifier)
    assert caught.value.index == index, str(caught.value)
    assert what in str(caught.value)
    assert str(caught.value).startswith("AUDIT LOG TAMPERED")


@pytest.mark.sqlite_mode
def test_rewriting_every_hash_is_caught_by_the_signed_checkpoint(home: Path, filled: Path,
                                                                 verifier: Verifier) -> None:
    # An attacker who edits a payload and recomputes every hash still cannot sign.
    with Ledger.open(home, db=filled, readonly=True) as reader:
        rows = list(reader.scan())
    forged = one_leaf_payload(filled, 25).replace('"i":25', '"i":52')
    payloads = [r.payload for r in rows]
    payloads[25] = forged.encode()
    from aurora.ledger import merkle

    leaves = [merkle.leaf_hash(p) for p in payloads]
    stored = list(merkle.iter_stored_hashes(iter(leaves)))
    raw_sql(filled, "DELETE FROM merkle_hashes")
    conn = sqlite3.connect(filled)
    conn.executemany("INSERT INTO merkle_hashes VALUES (?, ?)", enumerate(stored))
    conn.execute("UPDATE audit_log SET payload = ?, leaf_hash = ? WHERE seq = 25",
                 (forged, leaves[25]))
    conn.commit()
    conn.close()
    with pytest.raises(TamperedError, match=r"checkpoint.*a leaf in \[") as caught:
        run_audit(filled, verifier)
    assert caught.value.index is not None and caught.value.index <= 25


@both
def test_checkpoint_signed_by_another_key_is_rejected(home: Path, filled: Path,
                                                      verifier: Verifier) -> None:
    impostor = Signer(ORIGIN, Ed25519PrivateKey.generate())
    with Ledger.open(home, readonly=True) as reader:
        head = reader.tree_head()
    note = sign_checkpoint(Checkpoint(ORIGIN, head.size, head.root), impostor)
    with pytest.raises(TamperedError, match="not signed by a trusted key"):
        run_audit(filled, verifier, note)
    raw_sql(filled, "INSERT INTO checkpoints VALUES (?, ?, 'now', ?)",
            params=(head.size + 1, head.root, note))
    with pytest.raises(TamperedError, match="stored checkpoint"):
        run_audit(filled, verifier)


@both
def test_stored_checkpoint_columns_must_match_its_note(filled: Path,
                                                       verifier: Verifier) -> None:
    raw_sql(filled, "UPDATE checkpoints SET root_hash = zeroblob(32)")
    with pytest.raises(TamperedError, match="columns differ from its signed note"):
        run_audit(filled, verifier)


@both
def test_unsigned_tail_is_a_warning_not_tampering(home: Path, filled: Path,
                                                  verifier: Verifier) -> None:
    raw_sql(filled, f"DELETE FROM checkpoints WHERE tree_size = {SIZE}")
    report = run_audit(filled, verifier)
    assert any("not yet covered" in w or "no signed checkpoint" in w
               for w in report.warnings)  # type: ignore[attr-defined]


@pytest.mark.sqlite_mode
def test_a_rolled_back_database_warns(home: Path, filled: Path, verifier: Verifier,
                                      tmp_path: Path) -> None:
    older = tmp_path / "older.db"
    shutil.copy(filled, older)
    with Ledger.open(home) as ledger:
        fill(ledger, 5)
    note = Home(home).checkpoint_file.read_text()
    report = run_audit(older, verifier, note)
    assert any("rolled back" in w for w in report.warnings)  # type: ignore[attr-defined]


@pytest.mark.sqlite_mode
def test_table_only_copy_is_verified_from_payloads(home: Path, filled: Path,
                                                   verifier: Verifier, tmp_path: Path,
                                                   cli: Cli) -> None:
    other = tmp_path / "other.db"
    dump = subprocess.run(["sqlite3", str(filled), ".dump audit_log"], check=True,
                          capture_output=True, text=True).stdout
    subprocess.run(["sqlite3", str(other)], input=dump, check=True, text=True)
    report = run_audit(other, verifier, Home(home).checkpoint_file.read_text())
    assert report.stored_hashes_checked == 0  # type: ignore[attr-defined]
    assert any("stored hashes absent" in w for w in report.warnings)  # type: ignore[attr-defined]
    result = cli("verify-audit", "--db", str(other))
    assert result.code == 0 and "stored hashes absent" in result.out
    raw_sql(other, "UPDATE audit_log SET payload = replace(payload, '\"i\":3', '\"i\":4') "
                   "WHERE seq = 3", "UPDATE audit_log SET leaf_hash = zeroblob(32) WHERE seq = 3")
    result = cli("verify-audit", "--db", str(other))
    assert result.code == 1 and "AUDIT LOG TAMPERED" in result.out


@both
def test_columns_with_every_kind_of_character_verify(home: Path, db: Path, backend: str,
                                                     verifier: Verifier) -> None:
    # The column check compares the database's JSON rendering with the canonical payload:
    # escapes (controls, quotes, backslashes) and non-ASCII must agree exactly.
    nul = "\x00" if backend == "sqlite" else ""  # PostgreSQL text cannot hold NUL
    weird = [nul + "\x01\x1f\x7f\x08\x0c", 'quote " back \\ slash /', "\u2028\u2029 é 中文",
             "\U0001f600 astral", "", "tab\tnew\nline\r"]
    with Ledger.open(home) as ledger:
        for i, text in enumerate(weird):
            ledger.append(Entry(kind="note", subject=text, tenant_id=text or None,
                                treaty_id=f"T-{i}", data={"text": text}))
    assert run_audit(db, verifier).tree_size == len(weird)  # type: ignore[attr-defined]
    raw_sql(db, "UPDATE audit_log SET tenant_id = '' WHERE seq = 4")  # null -> ""
    with pytest.raises(TamperedError, match="column tenant_id") as caught:
        run_audit(db, verifier)
    assert caught.value.index == 4


@both
def test_a_stored_checkpoint_signed_by_another_key(home: Path, filled: Path,
                                                   verifier: Verifier) -> None:
    impostor = Signer(ORIGIN, Ed25519PrivateKey.generate())
    with Ledger.open(home, readonly=True) as reader:
        root_at_7 = reader.consistency_proof(7).old_root
        assert 7 not in [c.tree_size for c in reader.checkpoints()]
    note = sign_checkpoint(Checkpoint(ORIGIN, 7, root_at_7), impostor)  # a true root
    raw_sql(filled, "INSERT INTO checkpoints VALUES (7, ?, 'now', ?)", params=(root_at_7, note))
    with pytest.raises(TamperedError, match="stored checkpoint at size 7 does not verify"):
        run_audit(filled, verifier)
