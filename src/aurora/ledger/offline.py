"""``verify-proof``: check a proof or receipt with only a checkpoint and the verifier key (pure).

Accepted documents:

* an inclusion proof ``{"tree_size", "leaf_index", "leaf_hash", "root_hash", "proof"}``
  (what ``aurora ledger prove --json`` prints);
* a consistency proof ``{"old_size", "new_size", "old_root", "new_root", "proof"}``
  (``aurora ledger consistency --json``);
* a receipt (``Receipt.to_json()``), or a bridge 200 body carrying one under
  ``"receipt"``: the entry is re-hashed, the inclusion proof checked and the root
  compared with the receipt's own signed checkpoint. For an ``order`` entry the
  tenant's signature over the order and the provider's over the ACK are checked with
  the public keys on file, and the ACK must commit to that order; for a 200 body the
  ACK at the top level must be the one in the entry (same canonical JSON), so an
  edited answer cannot borrow a genuine receipt.

A bare proof's root is authenticated by a signed checkpoint note of the same
tree size (``--checkpoint``, by default ``ops/data/checkpoint``); a consistency
proof by a checkpoint of its old or its new size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aurora.canonical import canonical_json
from aurora.keys import Ed25519PublicKey
from aurora.ledger.entry import ConsistencyProof, InclusionProof, Receipt
from aurora.ledger.errors import NoteError, ProofError
from aurora.ledger.note import Checkpoint, Verifier, open_checkpoint

INCLUSION_KEYS = {"tree_size", "leaf_index", "leaf_hash", "root_hash", "proof"}
CONSISTENCY_KEYS = {"old_size", "new_size", "old_root", "new_root", "proof"}


@dataclass(frozen=True)
class Verified:
    kind: str  # "inclusion", "consistency" or "receipt"
    summary: str
    tree_size: int
    checkpoint_size: int

    def to_json(self) -> dict[str, Any]:
        return {"ok": True, "kind": self.kind, "tree_size": self.tree_size,
                "checkpoint_size": self.checkpoint_size, "summary": self.summary}


def _open(note: str | None, verifiers: Sequence[Verifier], origin: str | None) -> Checkpoint:
    if note is None:
        raise ProofError("no checkpoint to check the proof against (use --checkpoint FILE)")
    try:
        return open_checkpoint(note, verifiers, origin)
    except NoteError as exc:
        raise ProofError(f"checkpoint: {exc}") from None


def _same_root(checkpoint: Checkpoint, root: bytes, which: str) -> None:
    if checkpoint.root != root:
        raise ProofError(f"the checkpoint root for size {checkpoint.size} differs from the "
                         f"proof's {which}root")


@dataclass(frozen=True)
class OrderKeys:
    """The public keys an order entry's signatures are checked with, by id."""

    tenants: Mapping[str, Ed25519PublicKey]
    providers: Mapping[str, Ed25519PublicKey]


def verify_document(doc: object, verifiers: Sequence[Verifier], *, origin: str | None,
                    checkpoint_note: str | None, keys: OrderKeys | None = None) -> Verified:
    """Verify whatever proof ``doc`` is; raise ProofError saying what failed.

    ``keys`` are needed for receipts of ``order`` entries and for bridge answers: without
    them such a document is refused rather than half-checked.
    """
    if not isinstance(doc, Mapping):
        raise ProofError("the file is not a JSON object")
    if isinstance(doc.get("receipt"), Mapping):
        answer = {k: v for k, v in doc.items() if k != "receipt"}
        return _verify_receipt(doc["receipt"], verifiers, origin, checkpoint_note, keys,
                               answer or None)
    if "checkpoint" in doc and "entry" in doc:
        return _verify_receipt(doc, verifiers, origin, checkpoint_note, keys, None)
    if doc.keys() >= INCLUSION_KEYS:
        return _verify_inclusion(InclusionProof.from_json(doc), verifiers, origin,
                                 checkpoint_note)
    if doc.keys() >= CONSISTENCY_KEYS:
        return _verify_consistency(ConsistencyProof.from_json(doc), verifiers, origin,
                                   checkpoint_note)
    raise ProofError("the file is neither an inclusion proof, a consistency proof nor a "
                     "receipt (see `aurora ledger prove --json`)")


def _check_order_entry(entry: Mapping[str, Any], keys: OrderKeys | None,
                       answer: Mapping[str, Any] | None) -> str:
    """Check the signatures in an ``order`` entry and that ``answer`` (the 200 body without
    its receipt) is the entry's ACK; returns what was checked."""
    if entry.get("kind") != "order":
        if answer:
            raise ProofError(f"the answer carries an ACK but its receipt is for a "
                             f"{entry.get('kind')!r} entry, not an order")
        return ""
    if keys is None:
        raise ProofError("an order receipt needs the tenants' and providers' public keys "
                         "(ops/keys/) to check its signatures")
    # imported here: the order schema (aurora.wire, pydantic) is only needed for orders, and
    # importing the verification side stays free of it (tests/ledger/test_ledger_boundary.py)
    from aurora.provenance import order_record_problem

    problem = order_record_problem(entry, keys.tenants, keys.providers)
    if problem is not None:
        raise ProofError(f"the receipt's order entry does not prove itself: {problem}")
    data = entry["data"]
    if answer is not None and canonical_json(answer) != canonical_json(data["ack"]):
        changed = sorted(k for k in answer.keys() | data["ack"].keys()
                         if answer.get(k) != data["ack"].get(k))
        raise ProofError("the answer's ACK is not the one its receipt records (differs in "
                         f"{', '.join(changed)}): the answer was altered")
    ack, order = data["ack"], data["order"]
    return (f"; ACK {ack.get('ack_id')} signed by {ack.get('provider_id')}, order signed by "
            f"{order.get('tenant_id')}" + ("; the answer is the recorded ACK" if answer else ""))


def _verify_receipt(obj: Mapping[str, Any], verifiers: Sequence[Verifier], origin: str | None,
                    checkpoint_note: str | None, keys: OrderKeys | None,
                    answer: Mapping[str, Any] | None) -> Verified:
    receipt = Receipt.from_json(obj)
    receipt.verify(verifiers, origin)
    checked = _check_order_entry(receipt.entry, keys, answer)
    if checkpoint_note is not None:
        # A later checkpoint cannot be linked to the receipt's tree offline (that
        # needs a consistency proof), but one of the same size must agree.
        checkpoint = _open(checkpoint_note, verifiers, origin)
        if checkpoint.size == receipt.tree_size and checkpoint.root.hex() != receipt.root_hash:
            raise ProofError(f"the checkpoint for size {checkpoint.size} has another root "
                             "than the receipt: the log forked")
    return Verified("receipt", f"entry {receipt.leaf_index} ({receipt.entry.get('kind')}) is "
                    f"in the log of size {receipt.tree_size} under its signed checkpoint"
                    + checked,
                    receipt.tree_size, receipt.tree_size)


def _verify_inclusion(proof: InclusionProof, verifiers: Sequence[Verifier], origin: str | None,
                      checkpoint_note: str | None) -> Verified:
    proof.verify()
    checkpoint = _open(checkpoint_note, verifiers, origin)
    if checkpoint.size != proof.tree_size:
        raise ProofError(
            f"the checkpoint is for tree size {checkpoint.size} but the proof for "
            f"{proof.tree_size}; make a proof at the checkpoint's size: "
            f"aurora ledger prove --index {proof.leaf_index} --size {checkpoint.size} --json")
    _same_root(checkpoint, proof.root_hash, "")
    return Verified("inclusion", f"leaf {proof.leaf_index} is in the log of size "
                    f"{proof.tree_size} (signed checkpoint)", proof.tree_size, checkpoint.size)


def _verify_consistency(proof: ConsistencyProof, verifiers: Sequence[Verifier],
                        origin: str | None, checkpoint_note: str | None) -> Verified:
    proof.verify()
    checkpoint = _open(checkpoint_note, verifiers, origin)
    if checkpoint.size == proof.new_size:
        root, which = proof.new_root, "new"
    elif checkpoint.size == proof.old_size:
        root, which = proof.old_root, "old"
    else:
        raise ProofError(f"the checkpoint is for tree size {checkpoint.size}, neither the old "
                         f"({proof.old_size}) nor the new ({proof.new_size}) size")
    _same_root(checkpoint, root, f"{which} ")
    return Verified("consistency", f"the log of size {proof.old_size} is a prefix of the log "
                    f"of size {proof.new_size} ({which} size signed)", proof.new_size,
                    checkpoint.size)
