"""Entries, payloads and receipts (pure: no database)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aurora.canonical import StrictJSONError, reference_canonical_json
from aurora.keys import Ed25519PrivateKey
from aurora.ledger import Entry, EntryError, ProofError, Receipt, merkle
from aurora.ledger.entry import InclusionProof, prepare
from aurora.ledger.note import Checkpoint, Signer, sign_checkpoint


def entry(**changes: Any) -> Entry:
    fields: dict[str, Any] = {"kind": "order", "treaty_id": "AURORA-AKASH-001",
                              "tenant_id": "tenant-42", "subject": "nonce-0001",
                              "data": {"order": {"gpu_hours": 2.5, "nonce": "nonce-0001"},
                                       "ack": {"rtt_ms": 250.0, "note": "é\n"}}}
    fields.update(changes)
    return Entry(**fields)


@pytest.mark.parametrize("changes", [{}, {"treaty_id": None, "tenant_id": None,
                                          "subject": None, "data": {}},
                                     {"subject": 'quote " and \\ and \u2028'}])
def test_payload_is_the_canonical_json_of_the_entry(changes: dict[str, Any]) -> None:
    prepared = prepare(entry(**changes))
    ts = "2026-01-02T03:04:05.123456Z"
    expected = reference_canonical_json(prepared.entry_dict(41, ts))  # the rfc8785 library
    assert prepared.payload(41, ts) == expected
    assert set(prepared.entry_dict(41, ts)) == {"seq", "ts", "kind", "treaty_id", "tenant_id",
                                                "subject", "data"}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.text(max_size=10) | st.none(),
       st.dictionaries(st.text(max_size=5), st.text(max_size=5) | st.integers(), max_size=3))
def test_payload_matches_rfc8785_for_any_text(text: str, tenant: str | None,
                                              data: dict[str, Any]) -> None:
    try:
        expected = reference_canonical_json({"x": text, "t": tenant, "d": data})
    except StrictJSONError:  # lone surrogates: refused by both
        with pytest.raises(EntryError):
            prepare(entry(subject=text, tenant_id=tenant, data=data))
        return
    assert expected
    prepared = prepare(entry(subject=text, tenant_id=tenant, data=data))
    ts = "2026-01-02T03:04:05.123456Z"
    assert prepared.payload(7, ts) == reference_canonical_json(prepared.entry_dict(7, ts))


@pytest.mark.parametrize("bad", [
    {"kind": "Order"}, {"kind": ""}, {"kind": "x" * 40}, {"kind": 5},
    {"data": ["not", "an", "object"]}, {"data": {"x": math.inf}}, {"data": {"x": "\ud800"}},
    {"data": {"x": 2**64}}, {"subject": 12}, {"tenant_id": "t" * 2000},
    {"subject": "lone \ud800 surrogate"},
    {"data": {"x": "y" * (1 << 20)}},
])
def test_bad_entries_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(EntryError):
        prepare(entry(**bad))


def test_prepare_refuses_non_entries() -> None:
    with pytest.raises(EntryError):
        prepare({"kind": "note"})  # type: ignore[arg-type]


def make_receipt(signer: Signer, n: int = 5, index: int = 3) -> Receipt:
    prepared = [prepare(entry(subject=f"n-{i}")) for i in range(n)]
    ts = "2026-01-02T03:04:05.000000Z"
    leaves = [merkle.leaf_hash(p.payload(i, ts)) for i, p in enumerate(prepared)]
    stored = list(merkle.iter_stored_hashes(iter(leaves)))

    def read(idx: Any) -> list[bytes]:
        return [stored[i] for i in idx]

    root = merkle.tree_hash(n, read)
    note = sign_checkpoint(Checkpoint(signer.name, n, root), signer)
    return Receipt(index, n, leaves[index].hex(), root.hex(),
                   [h.hex() for h in merkle.inclusion_proof(index, n, read)], note,
                   prepared[index].entry_dict(index, ts))


def test_receipt_verifies_and_roundtrips_through_json() -> None:
    signer = Signer("aurora.local/remembrancer", Ed25519PrivateKey.generate())
    receipt = make_receipt(signer)
    receipt.verify([signer.verifier], "aurora.local/remembrancer")
    again = Receipt.from_json(receipt.to_json())
    assert again == receipt
    assert InclusionProof.from_json(receipt.to_json()).leaf_index == 3


@pytest.mark.parametrize("tamper", ["data", "seq", "proof", "root", "key", "size"])
def test_tampered_receipts_fail(tamper: str) -> None:
    signer = Signer("aurora.local/remembrancer", Ed25519PrivateKey.generate())
    doc = make_receipt(signer).to_json()
    if tamper == "data":
        doc["entry"] = {**doc["entry"], "data": {"forged": True}}
    elif tamper == "seq":
        doc["entry"] = {**doc["entry"], "seq": 4}
    elif tamper == "proof":
        doc["proof"] = [doc["proof"][0][::-1], *doc["proof"][1:]]
    elif tamper == "root":
        doc["root_hash"] = "00" * 32
    elif tamper == "size":
        doc["tree_size"] = 6
    verifiers = [signer.verifier]
    if tamper == "key":
        verifiers = [Signer(signer.name, Ed25519PrivateKey.generate()).verifier]
    with pytest.raises(ProofError):
        Receipt.from_json(doc).verify(verifiers)


@pytest.mark.parametrize("doc", [
    {}, {"leaf_index": -1}, {"leaf_index": 0, "tree_size": 1, "leaf_hash": "AB" * 32},
    {"leaf_index": 0, "tree_size": 1, "leaf_hash": "ab" * 32, "root_hash": "ab" * 32,
     "proof": "x"},
    {"leaf_index": 0, "tree_size": True, "leaf_hash": "ab" * 32, "root_hash": "ab" * 32,
     "proof": []},
])
def test_malformed_proof_json_is_refused(doc: dict[str, Any]) -> None:
    with pytest.raises(ProofError):
        InclusionProof.from_json(doc)
