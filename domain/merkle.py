"""The Merkle tree of RFC 9162 §2.1 over the event log: roots, inclusion and consistency proofs.

Leaves are hashed as SHA-256(0x00 || leaf) and interior nodes as SHA-256(0x01 || left || right),
so a leaf can never be passed off as a node (second-preimage resistance). The tree over n leaves
splits at the largest power of two below n; a proof is the RFC's list of sibling hashes.

Written here rather than taken from a library: the one maintained Python implementation,
pymerkle, is GPL-3.0 (this project is Apache-2.0), says itself that it awaits a security audit,
pins its own dependency exactly and uses its own proof format (1-based index, the leaf hash and
left/right bits inside the proof) instead of RFC 9162 audit paths, which other transparency-log
verifiers read. The algorithms are short, and the verifiers below are the RFC's own
(§2.1.3.2, §2.1.4.2), checked against transparency-dev/merkle's published vectors.

Everything works on leaf hashes, so a caller that stores them (or caches subtree roots) only
needs to hand over a sequence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from hmac import compare_digest

from domain.errors import MerkleProofError, MerkleRangeError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

Proof = tuple[bytes, ...]


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(_LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_hash(leaf_hashes: Sequence[bytes], size: int | None = None) -> bytes:
    """MTH over the first ``size`` leaves (all by default); the empty tree's is SHA-256("")."""
    size = len(leaf_hashes) if size is None else size
    _check_size(leaf_hashes, size)
    return _subtree_root(leaf_hashes, 0, size)


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int, size: int) -> Proof:
    """The audit path PATH(index, D[0:size]) of RFC 9162 §2.1.3.1."""
    _check_size(leaf_hashes, size)
    if not 0 <= index < size:
        raise MerkleRangeError(f"leaf index {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    start, end = 0, size
    # Walk down from the root; siblings are collected top-down and returned bottom-up.
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if index < start + k:
            path.append(_subtree_root(leaf_hashes, start + k, end))
            end = start + k
        else:
            path.append(_subtree_root(leaf_hashes, start, start + k))
            start += k
    return tuple(reversed(path))


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int, new_size: int) -> Proof:
    """PROOF(old_size, D[0:new_size]) of RFC 9162 §2.1.4.1; empty when the sizes are equal."""
    _check_size(leaf_hashes, new_size)
    if not 0 < old_size <= new_size:
        raise MerkleRangeError(
            f"no consistency proof from {old_size} to {new_size} leaves: "
            "the old tree must be non-empty and no larger than the new one"
        )
    path: list[bytes] = []
    start, end, m = 0, new_size, old_size
    whole_old_tree = True  # SUBPROOF's flag b: the old root is the verifier's, not the proof's
    while m != end - start:
        k = _largest_power_of_two_below(end - start)
        if m <= k:
            path.append(_subtree_root(leaf_hashes, start + k, end))
            end = start + k
        else:
            path.append(_subtree_root(leaf_hashes, start, start + k))
            start, m = start + k, m - k
            whole_old_tree = False
    if not whole_old_tree:
        path.append(_subtree_root(leaf_hashes, start, end))
    return tuple(reversed(path))


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2: raise MerkleProofError unless ``proof`` puts ``leaf`` (a leaf hash) at
    ``index`` in the tree of ``size`` leaves whose root is ``root``.

    ``size`` and ``root`` must come together from one verified tree head: the proof fixes the
    shape of the path, not the size alone, so a root presented under another size than its own
    (a head nobody signed) can still pass, as with every RFC 9162 verifier."""
    _check_hashes(leaf, root, proof)
    if not 0 <= index < size:
        raise MerkleProofError(f"leaf index {index} is not in a tree of {size} leaves")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise MerkleProofError("the inclusion proof is longer than the tree is high")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise MerkleProofError("the inclusion proof is shorter than the tree is high")
    if not compare_digest(r, root):
        raise MerkleProofError("the inclusion proof does not lead to the tree's root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2: raise MerkleProofError unless ``proof`` shows that the tree of
    ``old_size`` leaves with ``old_root`` is a prefix of the tree with ``new_root``.

    Each size and its root must come from one verified tree head, as for verify_inclusion."""
    _check_hashes(old_root, new_root, proof)
    if not 0 < old_size <= new_size:
        raise MerkleProofError(
            f"no consistency from {old_size} to {new_size} leaves: "
            "the old tree must be non-empty and no larger than the new one"
        )
    if old_size == new_size:
        if proof:
            raise MerkleProofError("a consistency proof between equal sizes must be empty")
        if not compare_digest(old_root, new_root):
            raise MerkleProofError("two trees of the same size have different roots")
        return
    if not proof:
        raise MerkleProofError("the consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # the old tree is a whole subtree: its root starts the path
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise MerkleProofError("the consistency proof is longer than the tree is high")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise MerkleProofError("the consistency proof is shorter than the tree is high")
    if not compare_digest(fr, old_root):
        raise MerkleProofError("the consistency proof does not lead to the old root")
    if not compare_digest(sr, new_root):
        raise MerkleProofError("the consistency proof does not lead to the new root")


@dataclass(frozen=True, slots=True)
class MerkleFrontier:
    """The roots of the perfect subtrees that make up a tree of ``size`` leaves, left to right:
    enough to append a leaf and compute the root in O(log n) without the leaves themselves
    (at most 64 hashes), so a follower of the log can resume from the last head it recorded."""

    size: int = 0
    subtree_roots: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.size < 0 or len(self.subtree_roots) != self.size.bit_count():
            raise MerkleRangeError(f"a tree of {self.size} leaves has one subtree per set bit")

    def append(self, leaf: bytes) -> MerkleFrontier:
        """The frontier after appending one leaf hash: equal-sized subtrees merge, as in
        binary addition."""
        roots, node, carry = list(self.subtree_roots), leaf, self.size
        while carry & 1:
            node = node_hash(roots.pop(), node)
            carry >>= 1
        return MerkleFrontier(self.size + 1, (*roots, node))

    def extend(self, leaves: Iterable[bytes]) -> MerkleFrontier:
        """The frontier after appending each leaf hash in turn, as ``append`` would."""
        roots, size = list(self.subtree_roots), self.size
        for leaf in leaves:
            node, carry = leaf, size
            while carry & 1:
                node = node_hash(roots.pop(), node)
                carry >>= 1
            roots.append(node)
            size += 1
        return MerkleFrontier(size, tuple(roots))

    def root(self) -> bytes:
        if not self.subtree_roots:
            return EMPTY_ROOT
        result = self.subtree_roots[-1]
        for left in reversed(self.subtree_roots[:-1]):
            result = node_hash(left, result)
        return result


def _subtree_root(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH(D[start:end]) level by level: pairing neighbours and carrying an odd last node up
    builds the same tree as the RFC's split at the largest power of two, without recursion."""
    if start == end:
        return EMPTY_ROOT
    level = list(leaf_hashes[start:end])
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _check_size(leaf_hashes: Sequence[bytes], size: int) -> None:
    if not 0 <= size <= len(leaf_hashes):
        raise MerkleRangeError(f"a tree of {size} leaves, but {len(leaf_hashes)} are known")


def _check_hashes(first: bytes, second: bytes, proof: Sequence[bytes]) -> None:
    # Malformed input is a failed proof, never an exception of another kind.
    for value in (first, second, *proof):
        if not isinstance(value, bytes) or len(value) != HASH_SIZE:
            raise MerkleProofError(f"not a {HASH_SIZE}-byte SHA-256 hash: {value!r:.80}")
