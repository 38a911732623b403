"""Signed tree heads over the event log, recorded in the same store, on SQLite and PostgreSQL:
their roots are those of the leaves recomputed from the log, a restarted recorder carries on
with the same tree, and the proofs served verify against the signed heads."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.domain import Aggregate, event

from domain.errors import MerkleProofError
from domain.merkle import MerkleFrontier, root_hash, verify_consistency, verify_inclusion
from domain.tree_head import verify_tree_head
from storage.errors import LogPositionNotFoundError, TreeHeadNotFoundError
from storage.tree_heads import HEAD_TOPIC, TreeHeadLedger, TreeHeadRecorder, log_leaf
from streams.tree_head_follower import start_tree_heads

pytestmark = pytest.mark.integration

NODE_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"tree head node").digest())


class Counter(Aggregate):
    """Something that stores events, standing in for the platform's aggregates."""

    @event("Counted")
    def count(self, value: int) -> None:
        self.value = value


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def event_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def ledger(event_store_url: str) -> Iterator[TreeHeadLedger]:
    app = TreeHeadLedger(event_store_url)
    try:
        yield app
    finally:
        app.close()


def store_events(ledger: TreeHeadLedger, count: int) -> None:
    counter = Counter()
    for value in range(count - 1):  # creating the counter is an event too
        counter.count(value)
    ledger.save(counter)


def recomputed_leaves(ledger: TreeHeadLedger) -> list[bytes]:
    return [log_leaf(n).hash() for n in ledger.notifications(0)]


def recorder(ledger: TreeHeadLedger, clock: Clock, every_events: int = 10) -> TreeHeadRecorder:
    return TreeHeadRecorder(ledger, NODE_KEY, every_events, every_seconds=60.0, clock=clock)


def test_a_head_is_recorded_every_n_events_with_the_root_of_the_recomputed_leaves(
    ledger: TreeHeadLedger,
) -> None:
    store_events(ledger, 25)

    recorded = recorder(ledger, Clock()).run_once()

    assert [h.tree_size for h in recorded] == [10, 20]
    assert [h.tree_size for h in ledger.heads()] == [10, 20]
    leaves = recomputed_leaves(ledger)
    for head in ledger.heads():
        assert head.root == root_hash(leaves, head.tree_size)
        assert verify_tree_head(head.signed_head(), NODE_KEY.public_key()).size == head.tree_size
        assert head.last_position == [n.id for n in ledger.notifications(0)][head.tree_size - 1]
    # Each head is an event of the log, under the tree from the next head on.
    topics = [n.topic for n in ledger.notifications(0)]
    assert topics.count(HEAD_TOPIC) == 2
    assert len(leaves) == 27


def test_a_timed_head_covers_what_came_since_but_an_idle_log_is_not_signed_again(
    ledger: TreeHeadLedger,
) -> None:
    clock = Clock()
    heads = recorder(ledger, clock, every_events=1000)
    store_events(ledger, 7)
    assert heads.run_once() == []

    clock.now = 61.0
    (timed,) = heads.run_once()
    clock.now = 200.0
    again = heads.run_once()  # only the timed head itself is new

    assert timed.tree_size == 7
    assert again == []
    assert timed.root == root_hash(recomputed_leaves(ledger), 7)


def test_a_restarted_recorder_resumes_from_its_last_head_with_the_same_tree(
    event_store_url: str, ledger: TreeHeadLedger
) -> None:
    store_events(ledger, 25)
    recorder(ledger, Clock()).run_once()
    store_events(ledger, 18)

    restarted = TreeHeadLedger(event_store_url)
    try:
        resumed = recorder(restarted, Clock())
        assert resumed.frontier.size == 20
        recorded = resumed.run_once()
    finally:
        restarted.close()

    leaves = recomputed_leaves(ledger)
    assert [h.tree_size for h in recorded] == [30, 40]
    for head in ledger.heads():
        assert head.root == root_hash(leaves, head.tree_size)
    rebuilt = MerkleFrontier()
    for leaf in leaves[:40]:
        rebuilt = rebuilt.append(leaf)
    assert ledger.heads()[-1].frontier() == rebuilt
    for leaf in leaves[40:45]:
        rebuilt = rebuilt.append(leaf)
    # It read up to the newest event when it began: its own two heads come next time.
    assert resumed.frontier == rebuilt


def test_a_second_recorder_racing_for_the_same_head_gives_way(
    event_store_url: str, ledger: TreeHeadLedger
) -> None:
    store_events(ledger, 12)
    first = recorder(ledger, Clock())
    other_ledger = TreeHeadLedger(event_store_url)
    try:
        second = recorder(other_ledger, Clock())
        assert [h.tree_size for h in first.run_once()] == [10]
        assert second.run_once() == []
        store_events(ledger, 10)
        assert [h.tree_size for h in second.run_once()] == [20]
    finally:
        other_ledger.close()

    assert [h.tree_size for h in ledger.heads()] == [10, 20]


def test_the_follower_records_heads_while_the_log_grows_and_stops_when_asked(
    event_store_url: str, ledger: TreeHeadLedger
) -> None:
    stop = threading.Event()
    thread = start_tree_heads(event_store_url, NODE_KEY, 10, 0.05, stop)
    try:
        store_events(ledger, 15)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and max(sizes(ledger), default=0) < 15:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)

    assert not thread.is_alive()
    leaves = recomputed_leaves(ledger)
    # Ten events make a head; the rest (and that head's own event) a timed one.
    assert sizes(ledger)[0] == 10
    assert max(sizes(ledger)) in (15, 16)
    for head in ledger.heads():
        assert head.root == root_hash(leaves, head.tree_size)


def sizes(ledger: TreeHeadLedger) -> list[int]:
    return [h.tree_size for h in ledger.heads()]


def flip(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


def test_every_event_has_an_inclusion_proof_that_verifies_against_the_signed_head(
    ledger: TreeHeadLedger,
) -> None:
    store_events(ledger, 23)
    recorder(ledger, Clock()).run_once()
    public = NODE_KEY.public_key()

    for head in ledger.heads():
        signed = verify_tree_head(head.signed_head(), public)
        for position in range(1, head.last_position + 1):
            proof = ledger.inclusion(position, head.tree_size)
            assert proof.leaf.position == position
            verify_inclusion(proof.leaf.hash(), proof.index, signed.size, proof.path, signed.root)


def test_a_tampered_inclusion_proof_or_leaf_fails(ledger: TreeHeadLedger) -> None:
    store_events(ledger, 23)
    recorder(ledger, Clock()).run_once()
    head = ledger.heads()[-1]
    proof = ledger.inclusion(7, head.tree_size)
    leaf = proof.leaf.hash()

    with pytest.raises(MerkleProofError):
        verify_inclusion(
            leaf, proof.index, head.tree_size, (flip(proof.path[0]), *proof.path[1:]), head.root
        )
    with pytest.raises(MerkleProofError):
        verify_inclusion(flip(leaf), proof.index, head.tree_size, proof.path, head.root)
    with pytest.raises(MerkleProofError):
        verify_inclusion(leaf, proof.index + 1, head.tree_size, proof.path, head.root)


def test_consistency_proofs_between_recorded_heads_verify(ledger: TreeHeadLedger) -> None:
    store_events(ledger, 35)
    recorder(ledger, Clock(), every_events=7).run_once()
    heads = ledger.heads()
    assert len(heads) == 5

    for first in heads:
        for second in heads:
            if first.tree_size > second.tree_size:
                continue
            proof = ledger.consistency(first.tree_size, second.tree_size)
            verify_consistency(
                first.tree_size, second.tree_size, first.root, second.root, proof.path
            )
    proof = ledger.consistency(heads[0].tree_size, heads[-1].tree_size)
    with pytest.raises(MerkleProofError):
        verify_consistency(
            heads[0].tree_size, heads[-1].tree_size, heads[0].root, flip(heads[-1].root), proof.path
        )


def test_proofs_are_only_served_against_recorded_heads(ledger: TreeHeadLedger) -> None:
    store_events(ledger, 12)
    recorder(ledger, Clock()).run_once()

    with pytest.raises(TreeHeadNotFoundError, match="no signed tree head of size 11"):
        ledger.inclusion(3, 11)
    with pytest.raises(LogPositionNotFoundError, match="log position 11 is not under"):
        ledger.inclusion(11, 10)
    with pytest.raises(TreeHeadNotFoundError, match="size 9"):
        ledger.consistency(9, 10)
    store_events(ledger, 12)
    recorder(ledger, Clock()).run_once()
    with pytest.raises(TreeHeadNotFoundError, match="no larger than the second"):
        ledger.consistency(20, 10)


def test_proofs_under_heads_larger_than_the_kept_leaves_read_the_log_and_still_verify(
    event_store_url: str, ledger: TreeHeadLedger
) -> None:
    store_events(ledger, 30)
    recorder(ledger, Clock()).run_once()
    small = TreeHeadLedger(event_store_url, max_kept_leaves=15)
    try:
        proofs = [small.inclusion(4, size) for size in (10, 20, 30, 10)]
        consistency = small.consistency(10, 30)
    finally:
        small.close()

    for proof in proofs:
        head = proof.head
        verify_inclusion(proof.leaf.hash(), proof.index, head.tree_size, proof.path, head.root)
    first, second = consistency.first, consistency.second
    verify_consistency(10, 30, first.root, second.root, consistency.path)


def test_each_recorded_head_is_found_by_its_size_and_no_other_size_is(
    ledger: TreeHeadLedger,
) -> None:
    store_events(ledger, 40)
    recorder(ledger, Clock(), every_events=3).run_once()
    sizes = {h.tree_size: h for h in ledger.heads()}

    for size in range(1, 45):
        if size in sizes:
            assert ledger.head_of_size(size) == sizes[size]
        else:
            with pytest.raises(TreeHeadNotFoundError):
                ledger.head_of_size(size)
