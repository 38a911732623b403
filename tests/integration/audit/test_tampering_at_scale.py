"""A thousand random tamperings of a 100,000-event store, each found by the offline verifier
no earlier than the first position it touched and no later than the first signed head over
it (a snapshot object: exactly at the publication naming it); the untampered store passes.

Each tampering is verified from the verifier's state at the last signed head before the
position it touches, forked from one reference pass over the untampered store. That state is
what a whole pass would hold there, since nothing before that position was changed, so the
finding is the one a whole pass would report; it makes a thousand passes take minutes, not
hours. The pass goes on to the bound and no further.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from benchmarks.audit import NODE_KEY, build
from domain.snapshot import Manifest, SnapshotLog
from domain.tree_head_log import TreeHeadLog
from storage.log_verifier import AuditLedger, LogVerifier, VerifyReport
from storage.object_store_local import LocalObjectStore
from storage.tree_heads import HEAD_TOPIC
from tests.support.stores import BACKENDS, empty_store
from tests.support.tampering import StoredRow, StoreTamperer

pytestmark = pytest.mark.integration

MESSAGES = 100_000
TAMPERINGS = 1000
HEAD_EVERY = 1000
PUBLISHED_TOPIC = "domain.snapshot:SnapshotLog.Published"
EVENT_KINDS = ("flip", "delete", "swap", "insert", "head")
OBJECT_KINDS = ("object", "manifest")


@dataclass
class LargeStore:
    url: str
    objects: LocalObjectStore
    tamperer: StoreTamperer
    ledger: AuditLedger
    last_position: int
    # Log positions of the signed heads, the last position each covers, and the verifier's
    # state right after each (position 0: before the log).
    heads: list[int]
    covered: list[int]
    checkpoints: dict[int, LogVerifier]
    # Each snapshot object's key, and the position of the publication naming it.
    published: dict[str, int]

    def first_head_over(self, position: int) -> int:
        index = bisect_left(self.covered, position)
        return self.heads[index] if index < len(self.heads) else self.last_position

    def verify_from_before(self, position: int, through: int) -> VerifyReport:
        start = max(p for p in [0, *self.heads] if p < position)
        return self.checkpoints[start].fork().run(until=through)


def _decoded(ledger: AuditLedger, row: StoredRow) -> object:
    stored = StoredEvent(row.originator_id, row.originator_version, row.topic, row.state)
    return ledger.mapper.to_domain_event(stored)


@pytest.fixture(scope="module", params=BACKENDS)
def large(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LargeStore]:
    with empty_store(request.param, tmp_path_factory) as url:
        objects = LocalObjectStore(tmp_path_factory.mktemp("objects"))
        build(url, objects, MESSAGES, 2, head_every=HEAD_EVERY, snapshot_every=5000)
        tamperer, ledger = StoreTamperer(url), AuditLedger(url)
        try:
            yield _reference_pass(url, objects, tamperer, ledger)
        finally:
            ledger.close()
            tamperer.close()


def _reference_pass(
    url: str, objects: LocalObjectStore, tamperer: StoreTamperer, ledger: AuditLedger
) -> LargeStore:
    heads, covered, published = [], [], {}
    for row in ledger.recorder.select_notifications(1, 10**9, topics=[HEAD_TOPIC]):
        head = _decoded(ledger, StoredRow(row.id, row.originator_id, 0, row.topic, row.state))
        assert isinstance(head, TreeHeadLog.Recorded)
        heads.append(row.id)
        covered.append(head.last_position)
    for row in ledger.recorder.select_notifications(1, 10**9, topics=[PUBLISHED_TOPIC]):
        event = _decoded(ledger, StoredRow(row.id, row.originator_id, 0, row.topic, row.state))
        assert isinstance(event, SnapshotLog.Published)
        manifest = Manifest.from_json(objects.get(event.manifest_key))
        published[event.manifest_key] = row.id
        for file in manifest.files:
            published.setdefault(file.key, row.id)
    verifier = LogVerifier(ledger, objects, NODE_KEY.public_key())
    checkpoints = {0: verifier.fork()}
    for position in heads:
        report = verifier.run(until=position)
        assert report.ok, report.failure
        checkpoints[position] = verifier.fork()
    report = verifier.run()
    assert report.ok, report.failure
    return LargeStore(
        url,
        objects,
        tamperer,
        ledger,
        report.last_position,
        heads,
        covered,
        checkpoints,
        published,
    )


def flipped(state: bytes, index: int) -> bytes:
    return state[:index] + bytes([state[index] ^ 1 << (index % 8)]) + state[index + 1 :]


def _tamper_event(store: LargeStore, kind: str, rng: random.Random) -> tuple[int, int]:
    """One tampering of the log, verified and put back: (first touched position, finding)."""
    last = store.last_position
    if kind == "head":
        position = rng.choice(store.heads)
        row = store.tamperer.row(position)
        head = _decoded(store.ledger, row)
        assert isinstance(head, TreeHeadLog.Recorded)
        change: dict[str, Any] = rng.choice(
            [
                {"root": rng.randbytes(32)},
                {"tree_size": head.tree_size + rng.choice([-1, 1])},
                {"last_position": head.last_position - 1},
                {"signature": rng.randbytes(64)},
                {"subtree_roots": [rng.randbytes(32) for _ in head.subtree_roots]},
            ]
        )
        changed = dataclasses.replace(head, **change)
        with store.tamperer.undone(position):
            store.tamperer.set_state(position, store.ledger.mapper.to_stored_event(changed).state)
            return position, _found(store, position, position)
    if kind == "insert":
        # A forged event (another event's topic and state, on an originator of its own) put in
        # at a position, the rest of the span up to the head over it moved up by one.
        position = rng.randrange(1, last)
        bound = store.first_head_over(position)
        source = store.tamperer.row(rng.randrange(1, last + 1))
        forged = dataclasses.replace(
            source,
            position=position,
            originator_id=type(source.originator_id)(str(uuid.uuid4()))
            if isinstance(source.originator_id, str)
            else uuid.uuid4(),
        )
        with store.tamperer.range_undone(position, bound + 1):
            store.tamperer.shift_up(position, bound)
            store.tamperer.insert(forged)
            return position, _found(store, position, bound + 1)
    position = rng.randrange(1, last if kind == "delete" else last + 1)
    if kind == "flip":
        row = store.tamperer.row(position)
        with store.tamperer.undone(position):
            index = rng.randrange(len(row.state))
            store.tamperer.set_state(position, flipped(row.state, index))
            return position, _found(store, position, store.first_head_over(position))
    if kind == "delete":
        with store.tamperer.undone(position):
            store.tamperer.delete(position)
            return position, _found(store, position, store.first_head_over(position))
    # A swap with an event in the same span or well beyond it.
    other = rng.choice(
        [
            min(last, max(1, position + rng.randint(-HEAD_EVERY, HEAD_EVERY))),
            rng.randrange(1, last + 1),
        ]
    )
    first, second = sorted((position, other))
    row, other_row = store.tamperer.row(first), store.tamperer.row(second)
    if row.state == other_row.state:  # the same position, or equal states: not a change
        return _tamper_event(store, kind, rng)
    with store.tamperer.undone(first, second):
        store.tamperer.set_state(first, other_row.state)
        store.tamperer.set_state(second, row.state)
        return first, _found(store, first, store.first_head_over(first))


def _found(store: LargeStore, earliest: int, bound: int) -> int:
    report = store.verify_from_before(earliest, bound)
    assert report.failure is not None, f"nothing found, tampered at {earliest}, bound {bound}"
    assert earliest <= report.failure.position <= bound, (earliest, bound, report.failure)
    return report.failure.position


def _tamper_object(store: LargeStore, kind: str, rng: random.Random) -> tuple[int, int]:
    manifests = sorted(key for key in store.published if key.endswith(".json"))
    files = sorted(key for key in store.published if not key.endswith(".json"))
    key = rng.choice(manifests if kind == "manifest" else files)
    original = store.objects.get(key)
    if kind == "manifest":
        manifest = Manifest.from_json(original)
        altered_by: dict[str, Any] = rng.choice(
            [
                {"row_count": manifest.row_count + 1},
                {"last_position": manifest.last_position - 1},
                {"files": manifest.files[:-1]},
                {"chain_heads": manifest.chain_heads[1:]},
            ]
        )
        altered = dataclasses.replace(manifest, **altered_by).to_json()
        assert altered != original
    else:
        altered = flipped(original, rng.randrange(len(original)))
    position = store.published[key]
    store.objects.put(key, altered)
    try:
        report = store.verify_from_before(position, position)
    finally:
        store.objects.put(key, original)
    assert report.failure is not None, key
    assert report.failure.position == position, (key, report.failure)
    return position, report.failure.position


def test_a_thousand_random_tamperings_are_all_found_in_their_span(large: LargeStore) -> None:
    assert large.last_position > MESSAGES
    assert len(large.published) > MESSAGES // 5000  # manifests and their files
    rng = random.Random(20261128)
    tried: Counter[str] = Counter()
    for _ in range(TAMPERINGS):
        kind = rng.choice(EVENT_KINDS + OBJECT_KINDS)
        if kind in OBJECT_KINDS:
            _tamper_object(large, kind, rng)
        else:
            _tamper_event(large, kind, rng)
        tried[kind] += 1

    assert sum(tried.values()) == TAMPERINGS
    assert min(tried.values()) > TAMPERINGS // 14, tried  # each kind half as often as even
    # Everything was put back: the whole untampered store passes again.
    ledger = AuditLedger(large.url)
    try:
        report = LogVerifier(ledger, large.objects, NODE_KEY.public_key()).run()
    finally:
        ledger.close()
    assert report.ok, report.failure
    assert report.last_position == large.last_position


def test_the_manifest_keys_are_told_apart_from_data_files(large: LargeStore) -> None:
    manifests = [key for key in large.published if key.endswith(".json")]
    assert manifests
    for key in manifests:
        Manifest.from_json(large.objects.get(key))
    assert all(Path(key).suffix == ".parquet" for key in large.published if key not in manifests)
