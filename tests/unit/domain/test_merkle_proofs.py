"""Honest Merkle proofs verify and every kind of tampered proof or tree head is refused."""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import MerkleProofError, MerkleRangeError, TreeHeadError
from domain.merkle import (
    MerkleFrontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from domain.tree_head import SignedTreeHead, TreeHead, sign_tree_head, verify_tree_head

Proof = tuple[bytes, ...]
NODE_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"node key").digest())
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"other key").digest())
STAMP = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


def leaves(size: int, salt: int = 0) -> list[bytes]:
    return [leaf_hash(f"event {salt}:{i}".encode()) for i in range(size)]


def flip(value: bytes, bit: int = 0) -> bytes:
    return bytes([value[0] ^ (1 << (bit % 8))]) + value[1:]


def rejected(check: Callable[[], object]) -> bool:
    try:
        check()
    except (MerkleProofError, TreeHeadError):
        return True
    return False


def path_mutations(
    proof: Proof, rng: random.Random, claim: Callable[[Proof], Callable[[], None]]
) -> Iterator[tuple[str, Callable[[], None]]]:
    """A sibling changed, the path cut short, two siblings swapped."""
    if proof:
        at = rng.randrange(len(proof))
        yield (
            "wrong sibling",
            claim((*proof[:at], flip(proof[at], rng.randrange(8)), *proof[at + 1 :])),
        )
        yield "truncated path", claim(proof[: rng.randrange(len(proof))])
    if len(proof) > 1:
        a, b = rng.sample(range(len(proof)), 2)
        swapped = list(proof)
        swapped[a], swapped[b] = swapped[b], swapped[a]
        if swapped != list(proof):
            yield "swapped order", claim(tuple(swapped))


def inclusion_mutations(
    hashes: list[bytes], index: int, size: int, proof: Proof, root: bytes, rng: random.Random
) -> Iterator[tuple[str, Callable[[], None]]]:
    """Every way to tamper with one inclusion claim; each must be refused."""
    leaf = hashes[index]

    def claim(
        leaf: bytes = leaf,
        index: int = index,
        size: int = size,
        proof: Proof = proof,
        root: bytes = root,
    ) -> Callable[[], None]:
        return lambda: verify_inclusion(leaf, index, size, proof, root)

    yield from path_mutations(proof, rng, lambda p: claim(proof=p))
    yield "extended path", claim(proof=(*proof, rng.choice([root, leaf, *hashes])))
    yield "extended path", claim(proof=(leaf, *proof))
    # A size is only ever claimed together with that size's root (both come from a signed
    # head): the same root under another size is a head nobody signed, see verify_inclusion.
    sizes = {size - 1, size + 1, size * 2, size // 2, rng.randint(index + 1, len(hashes))}
    for other in sorted(s for s in sizes - {size} if index < s <= len(hashes)):
        yield "wrong tree size", claim(size=other, root=root_hash(hashes, other))
    if size > 1:
        yield "wrong index", claim(index=rng.choice([i for i in range(size) if i != index]))
        yield "other leaf", claim(leaf=hashes[(index + 1) % size])
    yield "index beyond size", claim(index=size + rng.randrange(3))
    yield "other root", claim(root=root_hash(hashes, size - 1) if size > 1 else flip(root))


def consistency_mutations(
    hashes: list[bytes], old: int, new: int, proof: Proof, rng: random.Random
) -> Iterator[tuple[str, Callable[[], None]]]:
    old_root, new_root = root_hash(hashes, old), root_hash(hashes, new)

    def claim(
        old: int = old,
        new: int = new,
        old_root: bytes = old_root,
        new_root: bytes = new_root,
        proof: Proof = proof,
    ) -> Callable[[], None]:
        return lambda: verify_consistency(old, new, old_root, new_root, proof)

    yield from path_mutations(proof, rng, lambda p: claim(proof=p))
    yield "extended path", claim(proof=(*proof, rng.choice(hashes)))
    if old > 1:
        yield "wrong tree size", claim(old=old - 1, old_root=root_hash(hashes, old - 1))
    if new < len(hashes):
        yield "wrong tree size", claim(new=new + 1, new_root=root_hash(hashes, new + 1))
    if old < new:
        yield "wrong tree size", claim(old=new, new=old, old_root=new_root, new_root=old_root)
    yield "other root", claim(old_root=flip(old_root))
    yield "other root", claim(new_root=root_hash(hashes, new - 1) if new > 1 else flip(new_root))


def head_mutations(
    signed: SignedTreeHead, rng: random.Random
) -> Iterator[tuple[str, Callable[[], object]]]:
    head, public = signed.head, NODE_KEY.public_key()

    def claim(
        head: TreeHead = head,
        signature: bytes = signed.signature,
        key: Ed25519PrivateKey = NODE_KEY,
    ) -> Callable[[], object]:
        return lambda: verify_tree_head(SignedTreeHead(head, signature), key.public_key())

    altered = [
        TreeHead(head.size + rng.randrange(1, 5), head.root, head.timestamp, head.key_id),
        TreeHead(head.size, flip(head.root, rng.randrange(8)), head.timestamp, head.key_id),
        TreeHead(head.size, head.root, head.timestamp + timedelta(microseconds=1), head.key_id),
    ]
    for other in altered:
        yield "altered head", claim(head=other)
    yield "forged head signature", claim(signature=flip(signed.signature, rng.randrange(8)))
    yield "forged head signature", claim(signature=signed.signature[:-1])
    forged = OTHER_KEY.sign(head.canonical_bytes())
    yield "forged head signature", claim(signature=forged)
    yield "other key", claim(key=OTHER_KEY)
    by_other = sign_tree_head(head.size, head.root, head.timestamp, OTHER_KEY)
    yield "other key", lambda: verify_tree_head(by_other, public)
    relabelled = SignedTreeHead(
        TreeHead(head.size, head.root, head.timestamp, signed.head.key_id), by_other.signature
    )
    yield "other key", lambda: verify_tree_head(relabelled, public)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.data())
def test_every_honest_inclusion_proof_verifies(size: int, data: st.DataObject) -> None:
    hashes = leaves(size)
    root = root_hash(hashes)
    for index in {0, size - 1, data.draw(st.integers(0, size - 1))}:
        verify_inclusion(hashes[index], index, size, inclusion_proof(hashes, index, size), root)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.data())
def test_every_honest_consistency_proof_verifies(new: int, data: st.DataObject) -> None:
    hashes = leaves(new)
    old = data.draw(st.integers(1, new))
    proof = consistency_proof(hashes, old, new)
    verify_consistency(old, new, root_hash(hashes, old), root_hash(hashes), proof)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.data(), st.randoms(use_true_random=False))
def test_tampered_proofs_are_refused(size: int, data: st.DataObject, rng: random.Random) -> None:
    hashes = leaves(2 * size + 1)
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(1, size))
    proof = inclusion_proof(hashes, index, size)
    mutations = [
        *inclusion_mutations(hashes, index, size, proof, root_hash(hashes, size), rng),
        *consistency_mutations(hashes, old, size, consistency_proof(hashes, old, size), rng),
    ]
    accepted = [kind for kind, check in mutations if not rejected(check)]
    assert accepted == []


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**40), st.binary(min_size=32, max_size=32), st.randoms())
def test_altered_or_foreign_tree_heads_are_refused(
    size: int, root: bytes, rng: random.Random
) -> None:
    signed = sign_tree_head(size, root, STAMP, NODE_KEY)
    assert verify_tree_head(signed, NODE_KEY.public_key()) == signed.head
    accepted = [kind for kind, check in head_mutations(signed, rng) if not rejected(check)]
    assert accepted == []


def test_at_least_500_tampered_proofs_of_every_kind_are_all_refused() -> None:
    """The audit criterion, counted rather than assumed: a seeded campaign over trees of
    1..300 leaves tampers with inclusion proofs, consistency proofs and signed heads."""
    rng = random.Random(9162)
    tried: Counter[str] = Counter()
    accepted: Counter[str] = Counter()
    for round_ in range(60):
        size = rng.randint(1, 300)
        hashes = leaves(2 * size + 1, salt=round_)
        root = root_hash(hashes, size)
        index, old = rng.randrange(size), rng.randint(1, size)
        signed = sign_tree_head(size, root, STAMP + timedelta(seconds=round_), NODE_KEY)
        mutations = [
            *inclusion_mutations(
                hashes, index, size, inclusion_proof(hashes, index, size), root, rng
            ),
            *consistency_mutations(hashes, old, size, consistency_proof(hashes, old, size), rng),
            *head_mutations(signed, rng),
        ]
        for kind, check in mutations:
            tried[kind] += 1
            accepted[kind] += not rejected(check)
    assert sum(tried.values()) >= 500
    assert {kind for kind, n in tried.items() if n >= 20} >= {
        "wrong sibling",
        "truncated path",
        "extended path",
        "swapped order",
        "wrong tree size",
        "wrong index",
        "other root",
        "altered head",
        "forged head signature",
        "other key",
    }
    assert +accepted == Counter()


def test_proofs_are_only_made_for_leaves_and_sizes_the_tree_has() -> None:
    hashes = leaves(5)
    with pytest.raises(MerkleRangeError):
        inclusion_proof(hashes, 5, 5)
    with pytest.raises(MerkleRangeError):
        inclusion_proof(hashes, 0, 6)
    with pytest.raises(MerkleRangeError):
        consistency_proof(hashes, 0, 5)
    with pytest.raises(MerkleRangeError):
        consistency_proof(hashes, 4, 3)


def test_a_tree_head_must_be_well_formed() -> None:
    with pytest.raises(TreeHeadError):
        TreeHead(1, b"\x00" * 31, STAMP, "0" * 64)
    with pytest.raises(TreeHeadError):
        TreeHead(-1, b"\x00" * 32, STAMP, "0" * 64)
    with pytest.raises(TreeHeadError):
        TreeHead(1, b"\x00" * 32, STAMP.replace(tzinfo=None), "0" * 64)
    with pytest.raises(TreeHeadError):
        TreeHead(1, b"\x00" * 32, STAMP, "A" * 64)


def test_the_signed_bytes_are_the_documented_layout() -> None:
    head = TreeHead(3, bytes(range(32)), STAMP, "ab" * 32)
    micros = int(STAMP.timestamp()) * 1_000_000
    assert head.canonical_bytes() == (
        f"baylink tree head v1\n3\n{bytes(range(32)).hex()}\n{micros}\n{'ab' * 32}\n".encode()
    )


def test_a_frontier_grown_leaf_by_leaf_has_the_root_of_every_prefix() -> None:
    hashes = leaves(300)
    frontier = MerkleFrontier()
    assert frontier.root() == root_hash([])
    for size, leaf in enumerate(hashes, start=1):
        frontier = frontier.append(leaf)
        assert frontier.root() == root_hash(hashes, size)
        assert len(frontier.subtree_roots) == size.bit_count()
    with pytest.raises(MerkleRangeError):
        MerkleFrontier(3, frontier.subtree_roots[:1])


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 200), st.integers(0, 200))
def test_extending_a_frontier_is_appending_each_leaf(start: int, more: int) -> None:
    hashes = leaves(start + more)
    grown = MerkleFrontier().extend(hashes[:start])
    one_by_one = grown
    for leaf in hashes[start:]:
        one_by_one = one_by_one.append(leaf)

    assert grown.extend(hashes[start:]) == one_by_one
    assert one_by_one.root() == root_hash(hashes, start + more)
