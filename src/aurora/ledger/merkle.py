"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and verification (pure; no I/O).

Hashes: leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right), the
empty tree's root = SHA-256(""). No duplicated last leaf: a tree of ``n`` leaves
is ``node(MTH(first k), MTH(rest))`` with ``k`` the largest power of two < n.

Storage follows Go's ``golang.org/x/mod/sumdb/tlog`` "stored hash index" layout:
every complete, aligned subtree (level ``L``, the ``n``-th of that level) has one
hash, stored at ``stored_hash_index(L, n)``. Appending leaf ``n`` stores the leaf
hash followed by the interior hashes it completes, so the stored hashes of a log
are written in index order (about 2n of them) and a verifier can check them in a
single streaming pass. Tree hashes and proofs only need O(log n) stored hashes;
the functions here take a ``HashReader`` (``read(indexes) -> hashes``, like
``tlog.HashReader``) so the same code runs over SQLite or over a dict in memory.

Proofs are in RFC 6962 order (leaf/old tree first, root last) and are identical,
element for element, to ``tlog.ProveRecord`` / ``tlog.ProveTree``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence

from aurora.ledger.errors import ProofError, RangeError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# Reads the stored hashes at the given indexes, in that order.
HashReader = Callable[[Sequence[int]], Sequence[bytes]]

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


# --- stored hash layout ------------------------------------------------------------------


def stored_hash_index(level: int, n: int) -> int:
    """Index of the hash of the ``n``-th complete subtree of height ``level``.

    tlog computes it by walking to the subtree's last leaf (``((n+1) << level) - 1``)
    and counting the hashes stored before it: ``sum(x >> k for k >= 0)``, which is
    ``2x - popcount(x)``; the subtree's own hash comes ``level`` places after that
    leaf's hash.
    """
    last = ((n + 1) << level) - 1
    return 2 * last - last.bit_count() + level


def stored_hash_count(size: int) -> int:
    """How many hashes a log of ``size`` leaves stores."""
    if size == 0:
        return 0
    count = stored_hash_index(0, size - 1) + 1
    n = size - 1
    while n & 1:  # the last leaf completed one subtree per trailing 1 bit
        count += 1
        n >>= 1
    return count


def subtree_indexes(lo: int, hi: int) -> list[int]:
    """Stored indexes of the maximal complete subtrees that tile leaves ``[lo, hi)``.

    ``lo`` must be aligned to the first (largest) subtree, which is always the case
    for the ranges the RFC 6962 recursion produces.
    """
    need = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        while lo & ((1 << level) - 1):  # keep the subtree aligned
            level -= 1
        need.append(stored_hash_index(level, lo >> level))
        lo += 1 << level
    return need


def fold_subtrees(hashes: Sequence[bytes]) -> bytes:
    """The hash of a range from the hashes of its tiling subtrees (left to right)."""
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = node_hash(left, h)
    return h


def tree_hash(size: int, read: HashReader) -> bytes:
    """MTH of the first ``size`` leaves, from O(log size) stored hashes."""
    if size == 0:
        return EMPTY_ROOT
    return fold_subtrees(read(subtree_indexes(0, size)))


class Frontier:
    """The compact range ``[0, size)``: one hash per set bit of ``size``, largest first.

    It is all an appender needs: appending a leaf yields the hashes to store (in
    stored-index order) and the root is a fold of at most log2(size) hashes.
    """

    __slots__ = ("hashes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != size.bit_count():
            raise ValueError(f"a frontier of size {size} has {size.bit_count()} hashes")
        self.size = size
        self.hashes = list(hashes)

    @staticmethod
    def indexes(size: int) -> list[int]:
        """Stored indexes of the frontier hashes of a log of ``size`` leaves."""
        return subtree_indexes(0, size)

    @classmethod
    def load(cls, size: int, read: HashReader) -> Frontier:
        return cls(size, list(read(cls.indexes(size))))

    def copy(self) -> Frontier:
        return Frontier(self.size, self.hashes)

    def append(self, leaf: bytes) -> list[bytes]:
        """Add a leaf hash; return the hashes it stores, starting with the leaf's own."""
        created = [leaf]
        h = leaf
        n = self.size
        hashes = self.hashes
        while n & 1:  # a trailing 1 bit: the last subtree has this height; merge them
            h = node_hash(hashes.pop(), h)
            created.append(h)
            n >>= 1
        hashes.append(h)
        self.size += 1
        return created

    def root(self) -> bytes:
        return fold_subtrees(self.hashes) if self.hashes else EMPTY_ROOT


# --- proofs --------------------------------------------------------------------------------


def _inclusion_plan(index: int, size: int) -> list[list[int]]:
    """For each proof element, the stored indexes whose fold gives it.

    Walk up from the leaf one level at a time. A node with no right sibling is
    promoted unchanged (no proof element); a right sibling that is not a complete
    subtree is the fold of the complete subtrees tiling it.
    """
    if not 0 <= index < size:
        raise RangeError(f"leaf index {index} is outside a tree of size {size}")
    plan: list[list[int]] = []
    level = 0
    last = size - 1
    node = index
    while last:
        sibling = node ^ 1
        if sibling < node:
            plan.append([stored_hash_index(level, sibling)])
        elif sibling <= last:
            if (sibling + 1) << level <= size:
                plan.append([stored_hash_index(level, sibling)])
            else:
                plan.append(subtree_indexes(sibling << level, size))
        node >>= 1
        last >>= 1
        level += 1
    return plan


def inclusion_proof(index: int, size: int, read: HashReader) -> list[bytes]:
    """RFC 6962 audit path of leaf ``index`` in the tree of ``size`` leaves."""
    return _materialize(_inclusion_plan(index, size), read)


def inclusion_proofs(first: int, size: int, read: HashReader) -> list[list[bytes]]:
    """Audit paths of leaves ``first .. size-1`` in the tree of ``size`` leaves.

    The same as calling ``inclusion_proof`` for each, but leaves appended together
    share most of their path, so each node hash is read or folded only once.
    This builds the receipts of a commit batch.
    """
    if not 0 <= first <= size:
        raise RangeError(f"leaves from {first} are outside a tree of size {size}")
    nodes: dict[tuple[int, int], bytes] = {}

    def node(level: int, n: int) -> bytes:
        h = nodes.get((level, n))
        if h is None:
            if (n + 1) << level <= size:  # a complete subtree: one stored hash
                h = read([stored_hash_index(level, n)])[0]
            else:  # the right edge: fold the complete subtrees that tile it
                h = fold_subtrees(read(subtree_indexes(n << level, size)))
            nodes[(level, n)] = h
        return h

    proofs = []
    for index in range(first, size):
        proof = []
        level = 0
        last = size - 1
        n = index
        while last:
            sibling = n ^ 1
            if sibling <= last:
                proof.append(node(level, sibling))
            n >>= 1
            last >>= 1
            level += 1
        proofs.append(proof)
    return proofs


def _materialize(plan: list[list[int]], read: HashReader) -> list[bytes]:
    """Read every index of the plan in one call and fold each part into one proof hash."""
    flat = [i for part in plan for i in part]
    hashes = read(flat) if flat else []
    proof = []
    pos = 0
    for part in plan:
        proof.append(fold_subtrees(hashes[pos:pos + len(part)]))
        pos += len(part)
    return proof


def consistency_proof(old_size: int, new_size: int, read: HashReader) -> list[bytes]:
    """RFC 6962 consistency proof between trees of ``old_size`` <= ``new_size`` leaves."""
    if not 1 <= old_size <= new_size:
        raise RangeError(
            f"no consistency proof from size {old_size} to size {new_size} "
            "(need 1 <= old <= new)")
    return _materialize(_consistency_parts(0, new_size, old_size), read)


def _consistency_parts(lo: int, hi: int, old: int) -> list[list[int]]:
    """tlog's treeProof recursion (RFC 6962 SUBPROOF), as lists of subtree indexes."""
    if old == hi:
        return [] if lo == 0 else [subtree_indexes(lo, hi)]
    k = 1 << ((hi - lo - 1).bit_length() - 1)  # largest power of two < hi - lo
    if old <= lo + k:
        return [*_consistency_parts(lo, lo + k, old), subtree_indexes(lo + k, hi)]
    return [*_consistency_parts(lo + k, hi, old), subtree_indexes(lo, lo + k)]


# --- verification (RFC 9162 section 2.1.3.2 and 2.1.4.2) --------------------------------


def _check_elements(proof: Sequence[bytes]) -> None:
    for i, element in enumerate(proof):
        if len(element) != HASH_SIZE:
            raise ProofError(f"proof element {i} is {len(element)} bytes, not {HASH_SIZE}")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies for ``leaf`` at ``index`` in a tree of ``size``."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    if len(leaf) != HASH_SIZE:
        raise ProofError(f"leaf hash is {len(leaf)} bytes, not {HASH_SIZE}")
    _check_elements(proof)
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:  # skip levels where this node has no right sibling
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the path to the root")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     root: bytes) -> None:
    """Raise ProofError unless ``proof`` shows ``leaf`` at ``index`` under ``root``."""
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError(f"inclusion proof for leaf {index} at size {size} does not lead "
                         "to the root")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """Raise ProofError unless ``proof`` shows the ``old_size`` tree is a prefix of the new one.

    Consistency from the empty tree is not defined (RFC 6962) and is rejected.
    """
    if old_size < 1:
        raise ProofError("consistency from the empty tree is not defined")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("trees of the same size need an empty consistency proof")
        if old_root != new_root:
            raise ProofError("trees of the same size have different roots")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    _check_elements(proof)
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # the old tree is a complete subtree: its root is implied
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than needed")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than needed")
    if fr != old_root:
        raise ProofError(f"consistency proof does not lead to the old root (size {old_size})")
    if sr != new_root:
        raise ProofError(f"consistency proof does not lead to the new root (size {new_size})")


def iter_stored_hashes(leaves: Iterator[bytes]) -> Iterator[bytes]:
    """Every stored hash of a log with these leaf hashes, in stored-index order."""
    frontier = Frontier()
    for leaf in leaves:
        yield from frontier.append(leaf)
