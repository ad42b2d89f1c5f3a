"""RFC 6962 hashing and proofs: external vectors, a naive reference, and properties."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aurora.ledger import merkle
from aurora.ledger.errors import ProofError, RangeError

TESTDATA = Path(__file__).resolve().parents[1] / "testdata" / "rfc6962"
CLASSIC = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
           "606162636465666768696a6b6c6d6e6f"]


# --- a naive reference: the RFC 6962 definitions, recursively ------------------------------


def mth(leaves: Sequence[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((n - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n <= 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return subproof(m, leaves[:k], complete) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


def shape(m: int, n: int) -> list[str]:
    """Which side each sibling of PATH(m, D[n]) is on, leaf to root."""
    if n <= 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    return shape(m, k) + ["right"] if m < k else shape(m - k, n - k) + ["left"]


class Log:
    """A log held in memory: leaves plus the stored hashes ``merkle`` computes."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = list(leaves)
        self.stored = list(merkle.iter_stored_hashes(iter(merkle.leaf_hash(x) for x in leaves)))

    def read(self, indexes: Sequence[int]) -> list[bytes]:
        return [self.stored[i] for i in indexes]


@cache
def leaf_i_log() -> Log:
    return Log([f"leaf-{i}".encode() for i in range(4097)])


def tree_log(tree: dict[str, object]) -> Log:
    if tree["name"] == "leaf-i":
        built = leaf_i_log()
        given_leaves = tree.get("leaves")
        if given_leaves is not None:
            assert [bytes.fromhex(x) for x in given_leaves] == built.leaves[:len(given_leaves)]
        return built
    if tree["name"] == "rfc6962-classic":
        assert tree.get("leaves", CLASSIC) == CLASSIC
        return Log([bytes.fromhex(x) for x in CLASSIC])
    return Log([bytes.fromhex(x) for x in tree["leaves"]])  # type: ignore[union-attr]


def h(text: str) -> bytes:
    assert len(text) == 64 and text == text.lower()
    return bytes.fromhex(text)


# --- vectors.json --------------------------------------------------------------------------

VECTORS = json.loads((TESTDATA / "vectors.json").read_text())
TREES = {tree["name"]: tree for tree in VECTORS["trees"]}


def test_vector_file_format() -> None:
    assert VECTORS["format"] == "tlogcheck-rfc6962-v1"
    assert set(TREES) == {"rfc6962-classic", "leaf-i"}


@pytest.mark.parametrize("name", sorted(TREES))
def test_vector_leaf_hashes_and_roots(name: str) -> None:
    tree = TREES[name]
    log = tree_log(tree)
    for i, expected in enumerate(tree.get("leaf_hashes", [])):
        assert merkle.leaf_hash(log.leaves[i]) == h(expected)
    for entry in tree["roots"]:
        assert merkle.tree_hash(entry["size"], log.read) == h(entry["root"])
        if entry["size"] <= 128 or entry["size"] in (1000, 4096, 4097):  # naive is slow
            assert mth(log.leaves[:entry["size"]]) == h(entry["root"])


@pytest.mark.parametrize("name", sorted(TREES))
def test_vector_inclusion_proofs_verify_and_match(name: str) -> None:
    tree = TREES[name]
    log = tree_log(tree)
    assert tree["inclusion"]
    for entry in tree["inclusion"]:
        index, size = entry["index"], entry["size"]
        proof = [h(x) for x in entry["proof"]]
        merkle.verify_inclusion(index, size, h(entry["leaf_hash"]), proof, h(entry["root"]))
        assert merkle.leaf_hash(log.leaves[index]) == h(entry["leaf_hash"])
        assert merkle.tree_hash(size, log.read) == h(entry["root"])
        assert merkle.inclusion_proof(index, size, log.read) == proof  # element for element


@pytest.mark.parametrize("name", sorted(TREES))
def test_vector_consistency_proofs_verify_and_match(name: str) -> None:
    tree = TREES[name]
    log = tree_log(tree)
    assert tree["consistency"]
    for entry in tree["consistency"]:
        old, new = entry["old_size"], entry["new_size"]
        proof = [h(x) for x in entry["proof"]]
        merkle.verify_consistency(old, new, h(entry["old_root"]), h(entry["new_root"]), proof)
        assert merkle.tree_hash(old, log.read) == h(entry["old_root"])
        assert merkle.tree_hash(new, log.read) == h(entry["new_root"])
        assert merkle.consistency_proof(old, new, log.read) == proof


@pytest.mark.parametrize("name", sorted(TREES))
def test_vector_invalid_proofs_are_rejected(name: str) -> None:
    tree = TREES[name]
    assert tree["invalid_inclusion"] and tree["invalid_consistency"]
    for entry in tree["invalid_inclusion"]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(entry["index"], entry["size"], h(entry["leaf_hash"]),
                                    [h(x) for x in entry["proof"]], h(entry["root"]))
    for entry in tree["invalid_consistency"]:
        with pytest.raises(ProofError):
            merkle.verify_consistency(entry["old_size"], entry["new_size"],
                                      h(entry["old_root"]), h(entry["new_root"]),
                                      [h(x) for x in entry["proof"]])


# --- transparency-dev/merkle test data -----------------------------------------------------

TD = TESTDATA / "transparency-dev-merkle-testdata"


def b64(value: str) -> bytes:
    return base64.b64decode(value)


def td_cases(kind: str) -> list[Path]:
    return sorted((TD / kind).rglob("*.json"))


def test_transparency_dev_case_counts() -> None:
    assert len(td_cases("inclusion")) > 80 and len(td_cases("consistency")) > 90


def check_td_case(kind: str, data: dict[str, Any]) -> None:
    proof = [b64(x) for x in data["proof"] or []]
    if kind == "inclusion":
        merkle.verify_inclusion(data["leafIdx"], data["treeSize"], b64(data["leafHash"]),
                                proof, b64(data["root"]))
    else:
        merkle.verify_consistency(data["size1"], data["size2"], b64(data["root1"]),
                                  b64(data["root2"]), proof)


@pytest.mark.parametrize("case", td_cases("inclusion") + td_cases("consistency"),
                         ids=lambda p: str(p.relative_to(TD)))
def test_transparency_dev_case(case: Path) -> None:
    data = json.loads(case.read_text())
    kind = case.relative_to(TD).parts[0]
    if data["wantErr"]:
        with pytest.raises(ProofError):
            check_td_case(kind, data)
    else:
        check_td_case(kind, data)


# --- the stored-hash layout ----------------------------------------------------------------


def test_stored_hash_index_matches_tlog_layout() -> None:
    # tlog: leaf n's hash, then the interior hashes it completes, in creation order.
    expected = []
    for n in range(64):
        expected.append((0, n))
        level, m = 0, n
        while m & 1:
            level, m = level + 1, m >> 1
            expected.append((level, m))
    assert [merkle.stored_hash_index(level, n) for level, n in expected] == list(
        range(len(expected)))
    assert merkle.stored_hash_count(64) == len(expected)
    assert [merkle.stored_hash_count(n) for n in range(6)] == [0, 1, 3, 4, 7, 8]


def test_frontier_appends_what_the_layout_expects() -> None:
    frontier = merkle.Frontier()
    stored: list[bytes] = []

    def read(indexes: Sequence[int]) -> list[bytes]:
        return [stored[j] for j in indexes]

    for i in range(300):
        stored += frontier.append(merkle.leaf_hash(b"%d" % i))
        assert len(stored) == merkle.stored_hash_count(i + 1)
        assert merkle.Frontier.load(i + 1, read).hashes == frontier.hashes
        assert frontier.root() == merkle.tree_hash(i + 1, read)


def test_frontier_rejects_inconsistent_state() -> None:
    with pytest.raises(ValueError):
        merkle.Frontier(3, [b"x" * 32])


def test_empty_tree_and_range_errors() -> None:
    log = Log([])
    assert merkle.tree_hash(0, log.read) == hashlib.sha256(b"").digest()
    assert merkle.Frontier().root() == merkle.EMPTY_ROOT
    with pytest.raises(RangeError):
        merkle.inclusion_proof(0, 0, log.read)
    with pytest.raises(RangeError):
        merkle.consistency_proof(0, 3, log.read)
    with pytest.raises(RangeError):
        merkle.consistency_proof(4, 3, log.read)


def test_proof_elements_must_be_hashes() -> None:
    log = Log([b"a", b"b"])
    root = merkle.tree_hash(2, log.read)
    with pytest.raises(ProofError, match="bytes"):
        merkle.verify_inclusion(0, 2, merkle.leaf_hash(b"a"), [b"short"], root)


# --- properties ----------------------------------------------------------------------------

sizes = st.integers(min_value=1, max_value=200)


@st.composite
def log_and_index(draw: st.DrawFn) -> tuple[Log, int, int]:
    size = draw(sizes)
    log = Log([b"L%d" % i for i in range(size)])
    return log, draw(st.integers(0, size - 1)), size


@st.composite
def log_and_sizes(draw: st.DrawFn) -> tuple[Log, int, int]:
    new = draw(sizes)
    log = Log([b"L%d" % i for i in range(new)])
    return log, draw(st.integers(1, new)), new


@settings(max_examples=150, deadline=None)
@given(log_and_index())
def test_every_inclusion_proof_verifies_and_equals_the_rfc_path(
        case: tuple[Log, int, int]) -> None:
    log, index, size = case
    proof = merkle.inclusion_proof(index, size, log.read)
    assert proof == path(index, log.leaves[:size])
    root = mth(log.leaves[:size])
    assert merkle.tree_hash(size, log.read) == root
    merkle.verify_inclusion(index, size, merkle.leaf_hash(log.leaves[index]), proof, root)


@settings(max_examples=150, deadline=None)
@given(log_and_sizes())
def test_every_consistency_proof_verifies_and_equals_the_rfc_proof(
        case: tuple[Log, int, int]) -> None:
    log, old, new = case
    proof = merkle.consistency_proof(old, new, log.read)
    assert proof == subproof(old, log.leaves[:new], True)
    merkle.verify_consistency(old, new, mth(log.leaves[:old]), mth(log.leaves[:new]), proof)


@settings(max_examples=100, deadline=None)
@given(sizes, st.data())
def test_batch_inclusion_proofs_equal_single_ones(size: int, data: st.DataObject) -> None:
    # What receipts use: the paths of a commit batch's leaves, sharing node hashes.
    log = Log([b"L%d" % i for i in range(size)])
    first = data.draw(st.integers(0, size))
    batch = merkle.inclusion_proofs(first, size, log.read)
    assert batch == [merkle.inclusion_proof(i, size, log.read) for i in range(first, size)]


def _flip(value: bytes, bit: int) -> bytes:
    data = bytearray(value)
    data[(bit // 8) % len(data)] ^= 1 << (bit % 8)
    return bytes(data)


@settings(max_examples=200, deadline=None)
@given(log_and_index(), st.data())
def test_any_altered_inclusion_proof_fails(case: tuple[Log, int, int], data: st.DataObject
                                           ) -> None:
    log, index, size = case
    proof = merkle.inclusion_proof(index, size, log.read)
    leaf = merkle.leaf_hash(log.leaves[index])
    root = merkle.tree_hash(size, log.read)
    choices = ["root", "leaf", "index", "size", "append"] + (
        ["element", "drop", "swap"] if proof else [])
    mutation = data.draw(st.sampled_from(choices))
    bit = data.draw(st.integers(0, 255))
    if mutation == "root":
        root = _flip(root, bit)
    elif mutation == "leaf":
        leaf = _flip(leaf, bit)
    elif mutation == "index":
        other = data.draw(st.integers(0, size + 5).filter(lambda i: i != index))
        index = other
    elif mutation == "size":
        other = data.draw(st.integers(1, size + 64).filter(lambda s: s != size))
        if index < other and shape(index, other) == shape(index, size):
            return  # an audit path cannot tell these sizes apart (FORMAT.md)
        size = other
    elif mutation == "append":
        proof = [*proof, bytes(32)]
    elif mutation == "element":
        i = data.draw(st.integers(0, len(proof) - 1))
        proof = [*proof[:i], _flip(proof[i], bit), *proof[i + 1:]]
    elif mutation == "drop":
        proof = proof[:-1]
    else:
        if len(proof) < 2 or proof[0] == proof[1]:
            return
        proof = [proof[1], proof[0], *proof[2:]]
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, leaf, proof, root)


@settings(max_examples=200, deadline=None)
@given(log_and_sizes(), st.data())
def test_any_altered_consistency_proof_fails(case: tuple[Log, int, int],
                                             data: st.DataObject) -> None:
    log, old, new = case
    proof = merkle.consistency_proof(old, new, log.read)
    old_root, new_root = mth(log.leaves[:old]), mth(log.leaves[:new])
    choices = ["old_root", "new_root", "append", "old_size"] + (
        ["element", "drop"] if proof else [])
    mutation = data.draw(st.sampled_from(choices))
    bit = data.draw(st.integers(0, 255))
    if mutation == "old_root":
        old_root = _flip(old_root, bit)
    elif mutation == "new_root":
        new_root = _flip(new_root, bit)
    elif mutation == "append":
        proof = [*proof, bytes(32)]
    elif mutation == "old_size":
        other = data.draw(st.integers(0, new + 3).filter(lambda s: s != old))
        old = other
    elif mutation == "element":
        i = data.draw(st.integers(0, len(proof) - 1))
        proof = [*proof[:i], _flip(proof[i], bit), *proof[i + 1:]]
    else:
        proof = proof[:-1]
    with pytest.raises(ProofError):
        merkle.verify_consistency(old, new, old_root, new_root, proof)
