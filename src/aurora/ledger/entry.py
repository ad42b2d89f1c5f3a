"""What goes into the ledger and what comes out of it (pure; no I/O).

A leaf payload is ``canonical_json({"seq", "ts", "kind", "treaty_id", "tenant_id",
"subject", "data"})``. ``seq`` and ``ts`` are only known once the writer holds the
database's write lock, so the caller's thread canonicalises everything else
up front (``PreparedEntry``) and the writer splices in the two numbers: RFC 8785
serialises an object as its members in sorted key order, so the payload is
``{"data":…,"kind":…,"seq":<seq>,"subject":…,"tenant_id":…,"treaty_id":…,"ts":"<ts>"}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any

from aurora.canonical import StrictJSONError, canonical_json
from aurora.ledger import merkle
from aurora.ledger.errors import EntryError, NoteError, ProofError
from aurora.ledger.note import Verifier, open_checkpoint

KIND_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,31}")
MAX_FIELD = 1024
MAX_PAYLOAD = 1 << 20
_HEX64 = re.compile(r"[0-9a-f]{64}")

# --- entries ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """One event for the ledger. ``seq`` and ``ts`` are assigned when it is appended."""

    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)
    treaty_id: str | None = None
    tenant_id: str | None = None
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class PreparedEntry:
    """An entry checked and canonicalised, waiting for its ``seq`` and ``ts``."""

    kind: str
    treaty_id: str | None
    tenant_id: str | None
    subject: str | None
    data: Mapping[str, Any]
    head: bytes  # '{"data":…,"kind":…,"seq":'
    tail: bytes  # ',"subject":…,"tenant_id":…,"treaty_id":…,"ts":"'

    def payload(self, seq: int, ts: str) -> bytes:
        return b"".join((self.head, str(seq).encode(), self.tail, ts.encode(), b'"}'))

    def entry_dict(self, seq: int, ts: str) -> dict[str, Any]:
        return {"seq": seq, "ts": ts, "kind": self.kind, "treaty_id": self.treaty_id,
                "tenant_id": self.tenant_id, "subject": self.subject, "data": self.data}


def _optional_text(name: str, value: object) -> bytes:
    if value is None:
        return b"null"
    if type(value) is not str:
        raise EntryError(f"entry {name} must be a string or null, not {type(value).__name__}")
    if len(value) > MAX_FIELD:
        raise EntryError(f"entry {name} is longer than {MAX_FIELD} characters")
    try:
        # json's own string encoder (what json.dumps uses with ensure_ascii=False) writes
        # a string exactly as RFC 8785 does; a tenth of canonical_json's cost per field.
        return encode_basestring(value).encode("utf-8")
    except UnicodeEncodeError:
        raise EntryError(f"entry {name} holds a lone UTF-16 surrogate") from None


_valid_kinds: set[str] = set()


def _check_kind(kind: object) -> str:
    if kind in _valid_kinds:
        return kind
    if type(kind) is not str or not KIND_PATTERN.fullmatch(kind):
        raise EntryError(f"entry kind {kind!r} must match {KIND_PATTERN.pattern}")
    if len(_valid_kinds) < 1024:
        _valid_kinds.add(kind)
    return kind


def prepare(entry: Entry) -> PreparedEntry:
    """Check an entry and canonicalise it; EntryError names what is wrong."""
    if not isinstance(entry, Entry):
        raise EntryError(f"expected an Entry, not {type(entry).__name__}")
    kind = _check_kind(entry.kind)
    data = entry.data
    if type(data) is not dict:
        if not isinstance(data, Mapping):
            raise EntryError(f"entry data must be a JSON object, not {type(data).__name__}")
        data = dict(data)
    try:
        data_json = canonical_json(data)
    except StrictJSONError as exc:
        raise EntryError(f"entry data is not canonical JSON: {exc}") from None
    if len(data_json) > MAX_PAYLOAD:
        raise EntryError(f"entry data is larger than {MAX_PAYLOAD} bytes")
    head = b'{"data":' + data_json + b',"kind":"' + kind.encode() + b'","seq":'
    tail = b"".join((
        b',"subject":', _optional_text("subject", entry.subject),
        b',"tenant_id":', _optional_text("tenant_id", entry.tenant_id),
        b',"treaty_id":', _optional_text("treaty_id", entry.treaty_id),
        b',"ts":"'))
    return PreparedEntry(kind, entry.treaty_id, entry.tenant_id, entry.subject, data, head,
                         tail)


# --- what reads return -----------------------------------------------------------------------


def hex_hash(text: object, what: str) -> bytes:
    """A 32-byte hash from exactly 64 lowercase hex characters."""
    if not isinstance(text, str) or not _HEX64.fullmatch(text):
        raise ProofError(f"{what} is not 64 lowercase hex characters")
    return bytes.fromhex(text)


def _hex_list(value: object, what: str) -> tuple[bytes, ...]:
    if not isinstance(value, list):
        raise ProofError(f"{what} is not a list of hashes")
    return tuple(hex_hash(item, f"{what}[{i}]") for i, item in enumerate(value))


def _count(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    if type(value) is not int or value < 0:
        raise ProofError(f"{key} is not a non-negative integer")
    return value


@dataclass(frozen=True, slots=True)
class TreeHead:
    size: int
    root: bytes

    @property
    def root_hex(self) -> str:
        return self.root.hex()

    def to_json(self) -> dict[str, Any]:
        return {"tree_size": self.size, "root_hash": self.root.hex()}


@dataclass(frozen=True, slots=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    root_hash: bytes
    proof: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {"tree_size": self.tree_size, "leaf_index": self.leaf_index,
                "leaf_hash": self.leaf_hash.hex(), "root_hash": self.root_hash.hex(),
                "proof": [h.hex() for h in self.proof]}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> InclusionProof:
        return cls(_count(obj, "leaf_index"), _count(obj, "tree_size"),
                   hex_hash(obj.get("leaf_hash"), "leaf_hash"),
                   hex_hash(obj.get("root_hash"), "root_hash"),
                   _hex_list(obj.get("proof"), "proof"))

    def verify(self) -> None:
        """Raise ProofError unless the proof leads from the leaf hash to the root."""
        merkle.verify_inclusion(self.leaf_index, self.tree_size, self.leaf_hash, self.proof,
                                self.root_hash)


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    proof: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {"old_size": self.old_size, "new_size": self.new_size,
                "old_root": self.old_root.hex(), "new_root": self.new_root.hex(),
                "proof": [h.hex() for h in self.proof]}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ConsistencyProof:
        return cls(_count(obj, "old_size"), _count(obj, "new_size"),
                   hex_hash(obj.get("old_root"), "old_root"),
                   hex_hash(obj.get("new_root"), "new_root"),
                   _hex_list(obj.get("proof"), "proof"))

    def verify(self) -> None:
        merkle.verify_consistency(self.old_size, self.new_size, self.old_root, self.new_root,
                                  self.proof)


@dataclass(frozen=True, slots=True)
class Receipt:
    """Proof that an entry is in the log: what ``append`` returns and the bridge hands out.

    Hashes are lowercase hex. ``checkpoint`` is the ledger's signed note for
    ``tree_size``, so a client holding the verifier key can check the receipt alone.
    """

    leaf_index: int
    tree_size: int
    leaf_hash: str
    root_hash: str
    proof: list[str]
    checkpoint: str
    entry: dict[str, Any]
    # The leaf payload exactly as hashed (canonical JSON of ``entry``), when the writer
    # made this receipt; lets callers send it on without encoding the entry again.
    payload_bytes: bytes = field(default=b"", compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the inclusion-proof fields plus ``checkpoint`` and ``entry``."""
        return {"leaf_index": self.leaf_index, "tree_size": self.tree_size,
                "leaf_hash": self.leaf_hash, "root_hash": self.root_hash,
                "proof": list(self.proof), "checkpoint": self.checkpoint, "entry": self.entry}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Receipt:
        inclusion = InclusionProof.from_json(obj)
        checkpoint, entry = obj.get("checkpoint"), obj.get("entry")
        if not isinstance(checkpoint, str):
            raise ProofError("receipt has no checkpoint note")
        if not isinstance(entry, dict):
            raise ProofError("receipt has no entry object")
        return cls(inclusion.leaf_index, inclusion.tree_size, inclusion.leaf_hash.hex(),
                   inclusion.root_hash.hex(), [h.hex() for h in inclusion.proof], checkpoint,
                   entry)

    def payload(self) -> bytes:
        try:
            return canonical_json(self.entry)
        except StrictJSONError as exc:
            raise ProofError(f"receipt entry is not canonical JSON: {exc}") from None

    def inclusion(self) -> InclusionProof:
        return InclusionProof.from_json(self.to_json())

    def verify(self, verifiers: Sequence[Verifier], origin: str | None = None) -> None:
        """Check entry → leaf hash → inclusion → root → signed checkpoint; raise if any fails."""
        if self.entry.get("seq") != self.leaf_index:
            raise ProofError(f"receipt entry seq {self.entry.get('seq')!r} is not its leaf "
                             f"index {self.leaf_index}")
        inclusion = self.inclusion()
        if merkle.leaf_hash(self.payload()) != inclusion.leaf_hash:
            raise ProofError("receipt entry does not hash to its leaf_hash")
        inclusion.verify()
        check_checkpoint_matches(self.checkpoint, verifiers, origin, self.tree_size,
                                 inclusion.root_hash)


def check_checkpoint_matches(note: str, verifiers: Sequence[Verifier], origin: str | None,
                             size: int, root: bytes) -> None:
    """Verify a signed checkpoint and that it is for exactly this tree size and root."""
    try:
        checkpoint = open_checkpoint(note, verifiers, origin)
    except NoteError as exc:
        raise ProofError(f"checkpoint: {exc}") from None
    if checkpoint.size != size:
        raise ProofError(f"checkpoint is for tree size {checkpoint.size}, the proof for {size}")
    if checkpoint.root != root:
        raise ProofError(f"checkpoint root for size {size} differs from the proof's root")


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One stored ``audit_log`` row."""

    seq: int
    ts: str
    kind: str
    treaty_id: str | None
    tenant_id: str | None
    subject: str | None
    payload: bytes
    leaf_hash: bytes

    @property
    def entry(self) -> dict[str, Any]:
        """The entry as stored: the parsed payload."""
        value: dict[str, Any] = json.loads(self.payload)
        return value

    @property
    def data(self) -> Any:
        return self.entry.get("data")

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": self.ts, "kind": self.kind, "treaty_id": self.treaty_id,
                "tenant_id": self.tenant_id, "subject": self.subject,
                "leaf_hash": self.leaf_hash.hex(), "entry": self.entry}
