"""C2SP signed notes and tlog checkpoints: the vendored cases, determinism, key formats."""

from __future__ import annotations

import base64
import csv
from functools import cache
from pathlib import Path

import pytest

from aurora.keys import Ed25519PrivateKey
from aurora.ledger import merkle
from aurora.ledger.errors import KeyMismatchError, NoteError
from aurora.ledger.note import (
    Checkpoint,
    Signer,
    Verifier,
    open_checkpoint,
    open_note,
    parse_note,
    sign_checkpoint,
    sign_note,
    vkey_for,
)

CASES_DIR = Path(__file__).resolve().parents[1] / "testdata" / "checkpoint"
CLASSIC = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
           "606162636465666768696a6b6c6d6e6f"]


def load_cases() -> list[list[str]]:
    with open(CASES_DIR / "cases.tsv", encoding="utf-8") as fh:
        return [row for row in csv.reader(fh, delimiter="\t") if row and not row[0].startswith("#")]


@cache
def oracle(name: str) -> list[bytes]:
    leaves = ([f"leaf-{i}".encode() for i in range(4097)] if name == "leaf-i"
              else [bytes.fromhex(x) for x in CLASSIC])
    return list(merkle.iter_stored_hashes(iter(merkle.leaf_hash(x) for x in leaves)))


def oracle_root(name: str, size: int) -> bytes:
    stored = oracle(name)
    return merkle.tree_hash(size, lambda idx: [stored[i] for i in idx])


def verifiers(keys: str) -> list[Verifier]:
    return [Verifier.from_vkey((CASES_DIR / k).read_text()) for k in keys.split(",")]


CASES = load_cases()


def test_case_file_covers_valid_and_invalid() -> None:
    expects = {row[4] for row in CASES}
    assert expects == {"valid", "invalid"} and len(CASES) >= 38


@pytest.mark.parametrize("row", CASES, ids=lambda r: f"{r[0]}[{r[1]}]")
def test_vendored_case(row: list[str]) -> None:
    file, keys, kind, leaf_set, expect, _ = row
    message = (CASES_DIR / file).read_bytes()
    trusted = verifiers(keys)

    def check() -> None:
        if kind == "note":
            open_note(message, trusted)
            return
        checkpoint = open_checkpoint(message, trusted)
        if checkpoint.root != oracle_root(leaf_set, checkpoint.size):
            raise NoteError("root differs from the oracle's root at this size")

    if expect == "valid":
        check()
    else:
        with pytest.raises(NoteError):
            check()


def log_signer() -> Signer:
    return Signer.from_skey((CASES_DIR / "keys" / "log.skey").read_text())


def test_signer_key_formats_agree() -> None:
    signer = log_signer()
    seeds = dict(line.split("=") for line in (CASES_DIR / "keys" / "seeds.txt").read_text()
                 .split())
    from_seed = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seeds["log_seed_hex"]))
    assert signer.verifier.vkey() == (CASES_DIR / "keys" / "log.vkey").read_text().strip()
    assert vkey_for(signer.name, from_seed.public_key()) == signer.verifier.vkey()


@pytest.mark.parametrize("row", [r for r in CASES if r[0].startswith("valid/leaf-i")
                                 or r[0].startswith("valid/classic")],
                         ids=lambda r: r[0])
def test_signing_reproduces_the_vector_signature(row: list[str]) -> None:
    # Ed25519 is deterministic: same seed, same text, same signature line.
    note = parse_note((CASES_DIR / row[0]).read_bytes())
    signer = log_signer()
    mine = signer.signature_line(note.text).rstrip("\n")
    assert mine in [sig.line for sig in note.signatures]
    if len(note.signatures) == 1:
        assert sign_note(note.text, [signer]) == (CASES_DIR / row[0]).read_text()


def test_checkpoint_roundtrip_and_body_rules() -> None:
    signer = log_signer()
    body = Checkpoint(signer.name, 8, oracle_root("rfc6962-classic", 8), ("ext one", "é"))
    note = sign_checkpoint(body, signer)
    assert open_checkpoint(note, [signer.verifier], origin=signer.name) == body
    assert body.root.hex().startswith("5dc9da79")
    with pytest.raises(NoteError, match="origin"):
        open_checkpoint(note, [signer.verifier], origin="example.com/other")
    for text in ("o\n08\n" + base64.b64encode(bytes(32)).decode() + "\n", "o\n1\n", "\n1\nAA==\n",
                 "o\n1\n" + base64.b64encode(bytes(31)).decode() + "\n",
                 "o\n1\n" + base64.b64encode(bytes(32)).decode() + "\n\nx\n",
                 "o\n18446744073709551616\n" + base64.b64encode(bytes(32)).decode() + "\n"):
        with pytest.raises(NoteError):
            Checkpoint.parse(text)


def test_signed_note_rules() -> None:
    signer = log_signer()
    other = Signer("example.com/aurora-test-log", Ed25519PrivateKey.generate())
    note = sign_note("hello\n", [other, signer])
    assert open_note(note, [signer.verifier]).text == "hello\n"  # unknown key ignored
    with pytest.raises(NoteError, match="not signed by a trusted key"):
        open_note(note, [Verifier.from_vkey((CASES_DIR / "keys" / "witness.vkey").read_text())])
    with pytest.raises(NoteError):
        sign_note("no newline", [signer])
    with pytest.raises(NoteError):
        sign_note("tab\there\n", [signer])
    with pytest.raises(NoteError):
        sign_note("x\n", [])
    for bad in (note.replace("\u2014", "-"), note[:-1], note.replace("\n", "\r\n"),
                note.replace("hello\n\n", "hello\n"), "\ud800" + note, b"\xff" + note.encode()):
        with pytest.raises(NoteError):
            open_note(bad, [signer.verifier])


def test_key_parsing_errors() -> None:
    good = (CASES_DIR / "keys" / "log.vkey").read_text().strip()
    name, key_hex, key_b64 = good.split("+", 2)
    for bad in ("nope", f"{name}+{key_hex}", f"{name}+ABCDEF01+{key_b64}",
                f"{name}+00000000+{key_b64}", f"bad name+{key_hex}+{key_b64}",
                f"{name}+{key_hex}+AAAA", f"{name}+{key_hex}+!!!"):
        with pytest.raises(NoteError):
            Verifier.from_vkey(bad)
    with pytest.raises(NoteError):
        Signer.from_skey("PRIVATE+KEY+x")
    with pytest.raises(KeyMismatchError):
        Signer("has space", Ed25519PrivateKey.generate())
