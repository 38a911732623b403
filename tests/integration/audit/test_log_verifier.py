"""The offline verifier passes a store built through the real ingest path, and finds tampering
done directly in the database or the object store at the first log position it affects."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from eventsourcing.persistence import StoredEvent

from domain.snapshot import Manifest, SnapshotLog
from domain.tree_head_log import TreeHeadLog
from storage.examining_pool import ExaminingPool
from storage.log_examination import BATCH, examine, received, sendable
from storage.log_verifier import AuditLedger, LogVerifier, VerifyReport
from storage.object_store_local import LocalObjectStore
from storage.tree_heads import HEAD_TOPIC
from tests.support.audited_store import NODE_KEY, build_store
from tests.support.stores import BACKENDS, empty_store
from tests.support.tampering import StoredRow, StoreTamperer

pytestmark = pytest.mark.integration

BATCH_TOPIC = "domain.ingest:IngestChain.BatchRecorded"
PUBLISHED_TOPIC = "domain.snapshot:SnapshotLog.Published"


@dataclasses.dataclass(frozen=True)
class Store:
    url: str
    objects: LocalObjectStore
    tamperer: StoreTamperer

    def verify(self) -> VerifyReport:
        """One pass in this process, and one with worker processes examining short ranges
        ahead of it, which must report exactly the same."""
        ledger = AuditLedger(self.url)
        pool = ExaminingPool(self.url, workers=2, span=7)
        try:
            alone = LogVerifier(ledger, self.objects, NODE_KEY.public_key()).run()
            pooled = LogVerifier(ledger, self.objects, NODE_KEY.public_key(), pool=pool).run()
        finally:
            pool.close()
            ledger.close()
        assert pooled == alone
        return alone

    def rows(self, topic: str | None = None) -> list[StoredRow]:
        return [r for r in self.tamperer.rows() if topic is None or r.topic == topic]

    def first_head_over(self, position: int) -> int:
        """The log position of the first tree head whose tree holds ``position``."""
        ledger = AuditLedger(self.url)
        try:
            for row in self.rows(HEAD_TOPIC):
                head = ledger.mapper.to_domain_event(_stored(row))
                assert isinstance(head, TreeHeadLog.Recorded)
                if head.last_position >= position:
                    return row.position
        finally:
            ledger.close()
        raise AssertionError(f"no head covers position {position}")


def _stored(row: StoredRow) -> StoredEvent:
    return StoredEvent(row.originator_id, row.originator_version, row.topic, row.state)


@pytest.fixture(scope="module", params=BACKENDS)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    with empty_store(request.param, tmp_path_factory) as url:
        objects = LocalObjectStore(tmp_path_factory.mktemp("objects"))
        build_store(url, objects)
        tamperer = StoreTamperer(url)
        try:
            yield Store(url, objects, tamperer)
        finally:
            tamperer.close()


def flipped(state: bytes, index: int) -> bytes:
    return state[:index] + bytes([state[index] ^ 0x01]) + state[index + 1 :]


def reencoded(store: Store, row: StoredRow, **changes: object) -> bytes:
    ledger = AuditLedger(store.url)
    try:
        event = ledger.mapper.to_domain_event(_stored(row))
        changed = dataclasses.replace(event, **changes)  # type: ignore[type-var]
        return ledger.mapper.to_stored_event(changed).state
    finally:
        ledger.close()


def test_an_untampered_store_verifies(store: Store) -> None:
    report = store.verify()

    assert report.failure is None
    assert report.events == report.last_position == len(store.rows())
    assert (report.batches, report.chains, report.snapshots) == (120, 4, 3)
    assert report.tree_heads == len(store.rows(HEAD_TOPIC))
    assert report.unsigned_events == 1  # the last head itself


def test_a_flipped_byte_in_a_batch_is_found_at_its_position(store: Store) -> None:
    row = store.rows(BATCH_TOPIC)[30]
    with store.tamperer.undone(row.position):
        store.tamperer.set_state(row.position, flipped(row.state, len(row.state) // 2))
        report = store.verify()

    assert report.failure is not None
    assert report.failure.position == row.position
    assert store.verify().ok


@pytest.mark.parametrize(
    "change", [{"previous_hash": 12}, {"record_count": True}, {"dataset_id": b"x"}]
)
def test_a_batch_value_of_another_kind_is_found_with_and_without_workers(
    store: Store, change: dict[str, object]
) -> None:
    # Workers send what they examine as typed msgpack, which cannot carry such a value: the
    # pass examines that range again itself (`Store.verify` compares the two passes).
    rows = store.rows(BATCH_TOPIC)
    row = rows[len(rows) // 2]
    with store.tamperer.undone(row.position):
        store.tamperer.set_state(row.position, reencoded(store, row, **change))
        report = store.verify()
        ledger = AuditLedger(store.url)
        try:
            stored = ledger.recorder.select_notifications(row.position, 1)
            examined = [examine(notification, ledger.mapper) for notification in stored]
        finally:
            ledger.close()

    assert report.failure is not None
    assert report.failure.position == row.position
    assert examined[0][2] == BATCH
    assert received(sendable(examined)) is None


def test_a_changed_catalog_event_is_found_by_the_first_head_over_it(store: Store) -> None:
    row = store.rows("domain.catalog:Dataset.Registered")[0]
    with store.tamperer.undone(row.position):
        store.tamperer.set_state(row.position, flipped(row.state, len(row.state) - 3))
        report = store.verify()

    assert report.failure is not None
    assert report.failure.position == store.first_head_over(row.position)
    assert report.failure.reason == "head_root"
    assert "log positions 1 to" in report.failure.message


def test_a_deleted_batch_breaks_its_chain_at_the_chains_next_batch(store: Store) -> None:
    batches = store.rows(BATCH_TOPIC)
    row = batches[10]
    following = next(r for r in batches[11:] if r.originator_id == row.originator_id)
    with store.tamperer.undone(row.position):
        store.tamperer.delete(row.position)
        report = store.verify()

    assert report.failure is not None
    assert (report.failure.position, report.failure.reason) == (following.position, "chain_version")


def test_swapped_batches_are_found_at_the_first_of_them(store: Store) -> None:
    first, second = store.rows(BATCH_TOPIC)[20], store.rows(BATCH_TOPIC)[25]
    with store.tamperer.undone(first.position, second.position):
        store.tamperer.set_state(first.position, second.state)
        store.tamperer.set_state(second.position, first.state)
        report = store.verify()

    assert report.failure is not None
    assert report.failure.position == first.position


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"root": b"\x07" * 32}, "head_root"),
        ({"signature": b"\x07" * 64}, "head_signature"),
        ({"tree_size": 7}, "head_order"),
        ({"timestamp": datetime(2000, 1, 1, tzinfo=UTC)}, "head_timestamp"),
        ({"subtree_roots": [b"\x07" * 32]}, "head_frontier"),
    ],
)
def test_an_altered_tree_head_is_found_at_the_head(
    store: Store, change: dict[str, object], reason: str
) -> None:
    row = store.rows(HEAD_TOPIC)[3]
    with store.tamperer.undone(row.position):
        store.tamperer.set_state(row.position, reencoded(store, row, **change))
        report = store.verify()

    assert report.failure is not None
    assert (report.failure.position, report.failure.reason) == (row.position, reason)


def _published(store: Store, index: int) -> tuple[StoredRow, SnapshotLog.Published]:
    row = store.rows(PUBLISHED_TOPIC)[index]
    ledger = AuditLedger(store.url)
    try:
        event = ledger.mapper.to_domain_event(_stored(row))
    finally:
        ledger.close()
    assert isinstance(event, SnapshotLog.Published)
    return row, event


def test_an_altered_snapshot_file_is_found_at_its_publication(store: Store) -> None:
    row, published = _published(store, 1)
    manifest = Manifest.from_json(store.objects.get(published.manifest_key))
    key = manifest.files[0].key
    original = store.objects.get(key)
    store.objects.put(key, original + b"\x00")
    try:
        report = store.verify()
    finally:
        store.objects.put(key, original)

    assert report.failure is not None
    assert (report.failure.position, report.failure.reason) == (
        row.position,
        "snapshot_file_digest",
    )
    assert key in report.failure.message


def test_an_altered_manifest_is_found_at_its_publication(store: Store) -> None:
    row, published = _published(store, 0)
    original = store.objects.get(published.manifest_key)
    manifest = Manifest.from_json(original)
    store.objects.put(published.manifest_key, dataclasses.replace(manifest, row_count=1).to_json())
    try:
        report = store.verify()
    finally:
        store.objects.put(published.manifest_key, original)

    assert report.failure is not None
    assert report.failure.reason == "snapshot_manifest_digest"
    assert report.failure.position == row.position


def test_a_publication_naming_other_chain_heads_is_found(store: Store) -> None:
    row, published = _published(store, 2)
    heads = [[p, v - 1, h] for p, v, h in published.chain_heads]
    with store.tamperer.undone(row.position):
        store.tamperer.set_state(row.position, reencoded(store, row, chain_heads=heads))
        report = store.verify()

    assert report.failure is not None
    assert report.failure.position == row.position
    assert report.failure.reason == "snapshot_chain_heads"


def test_random_tampering_is_found_no_earlier_than_it_and_no_later_than_the_head_over_it(
    store: Store,
) -> None:
    generator = random.Random(20261128)
    rows = store.rows()
    last = rows[-1].position
    for _ in range(50):
        kind = generator.choice(["flip", "delete", "swap"])
        row = generator.choice(rows[:-1] if kind == "delete" else rows)
        other = generator.choice([r for r in rows if r.position != row.position])
        touched = (row.position, other.position) if kind == "swap" else (row.position,)
        with store.tamperer.undone(*touched):
            if kind == "flip":
                index = generator.randrange(len(row.state))
                store.tamperer.set_state(row.position, flipped(row.state, index))
            elif kind == "delete":
                store.tamperer.delete(row.position)
            else:
                store.tamperer.set_state(row.position, other.state)
                store.tamperer.set_state(other.position, row.state)
            report = store.verify()
        earliest = min(touched)
        bound = last if earliest == last else store.first_head_over(earliest)
        assert report.failure is not None, (kind, touched)
        assert earliest <= report.failure.position <= bound, (kind, touched, report.failure)
    assert store.verify().ok


def _published_objects(store: Store) -> dict[str, int]:
    """Each snapshot object's key, and the log position of the publication that names it."""
    named = {}
    for index in range(len(store.rows(PUBLISHED_TOPIC))):
        row, published = _published(store, index)
        manifest = Manifest.from_json(store.objects.get(published.manifest_key))
        named[published.manifest_key] = row.position
        for file in manifest.files:
            named.setdefault(file.key, row.position)
    return named


def test_random_changes_to_snapshot_objects_are_found_at_their_publication(
    store: Store,
) -> None:
    generator = random.Random(28112026)
    named = _published_objects(store)
    for _ in range(20):
        key = generator.choice(sorted(named))
        original = store.objects.get(key)
        index = generator.randrange(len(original))
        store.objects.put(key, flipped(original, index))
        try:
            report = store.verify()
        finally:
            store.objects.put(key, original)

        assert report.failure is not None, key
        assert report.failure.position == named[key], (key, report.failure)
        assert report.failure.reason in {"snapshot_manifest_digest", "snapshot_file_digest"}
    assert store.verify().ok


def test_without_a_public_key_the_first_head_is_a_finding_not_a_pass(store: Store) -> None:
    ledger = AuditLedger(store.url)
    try:
        report = LogVerifier(ledger, store.objects, None).run()
    finally:
        ledger.close()

    assert report.failure is not None
    assert report.failure.reason == "head_unverifiable"
    assert report.failure.position == store.rows(HEAD_TOPIC)[0].position


def test_a_pass_run_in_steps_or_continued_from_a_fork_reports_what_one_pass_does(
    store: Store,
) -> None:
    row = store.rows(BATCH_TOPIC)[60]
    ledger = AuditLedger(store.url)
    try:
        stepped = LogVerifier(ledger, store.objects, NODE_KEY.public_key())
        for until in range(7, row.position - 1, 7):
            assert stepped.run(until=until).last_position == until
        fork = stepped.fork()
        assert stepped.run() == store.verify()
        with store.tamperer.undone(row.position):
            store.tamperer.set_state(row.position, flipped(row.state, len(row.state) // 2))
            whole = store.verify()
            continued = fork.run()
    finally:
        ledger.close()

    assert whole.failure is not None
    assert continued == whole
