"""The shared tail of the notification log, and the decisions kept under it: batches read once
are served as the store serves them, and a change to the policy is seen by the next decision."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from domain.classification import Classification
from domain.ingest import IngestChain
from domain.provenance import Provenance
from storage.catalog import Catalog
from storage.delivery_feed import DeliveryFeed
from storage.delivery_tail import LogTail
from storage.governance import Governance
from storage.ingestion import IngestLedger
from storage.object_store_factory import open_object_store
from storage.snapshots import SnapshotLedger
from streams import wire
from streams.processor import IngestProcessor
from tests.integration.api.governed import (
    DATASETS,
    HK,
    MO_DSAT,
    START,
    SZ,
    GovernedStore,
    store_governed,
    subscribe_sse,
)
from tests.support import stores
from tests.support.platform import reading_rows

pytestmark = pytest.mark.integration
event_store_url = stores.event_store_url

_offsets = count(1_000)


@pytest.fixture(scope="module")
def governed(event_store_url: str, tmp_path_factory: pytest.TempPathFactory) -> GovernedStore:
    objects = open_object_store((tmp_path_factory.mktemp("tail") / "objects").as_uri())
    return store_governed(event_store_url, objects)


@pytest.fixture
def ledger(event_store_url: str, governed: GovernedStore) -> Iterator[SnapshotLedger]:
    ledger = SnapshotLedger(event_store_url)
    try:
        yield ledger
    finally:
        ledger.close()


def _ingest(url: str, dataset_id: str, messages: int = 2) -> None:
    """More batches of the dataset, each one message of 10 rows."""
    dataset = DATASETS[dataset_id]
    catalog, ingest = Catalog(url), IngestLedger(url)
    try:
        processor = IngestProcessor(ingest, catalog, clock=lambda: START + timedelta(days=1))
        for _ in range(messages):
            offset = next(_offsets)
            rows = reading_rows(10, prefix=f"tail-{offset}-", start=START)
            provenance = Provenance(
                f"file:///tail-{offset}.csv", START, f"{offset % 100:02d}" * 32,
                "tabular", "1", dataset.owner_region, wire.WIRE_SCHEMA_VERSION,
            )  # fmt: skip
            outcome = processor.process(
                dataset.ingest_topic,
                0,
                offset,
                wire.encode_rows(rows),
                wire.headers_for(wire.KIND_RECORDS, dataset.id, provenance, None),
            )
            assert outcome.accepted == 10
    finally:
        ingest.close()
        catalog.close()


def _hashes(batches: Iterable[tuple[int, IngestChain.BatchRecorded]]) -> list[tuple[int, str]]:
    return [(position, batch.hash) for position, batch in batches]


def _from_store(
    ledger: SnapshotLedger, dataset_id: str, first: int, last: int
) -> list[tuple[int, str]]:
    return _hashes(
        (p, b) for p, b in ledger.batches_between(first, last) if b.dataset_id == dataset_id
    )


def test_the_tail_serves_the_batches_it_read_as_the_store_does(
    event_store_url: str, ledger: SnapshotLedger
) -> None:
    tail = LogTail(ledger)
    before = tail.catch_up()
    _ingest(event_store_url, SZ)
    _ingest(event_store_url, HK)

    after = tail.catch_up()

    assert after.position > before.position
    assert after.changed == after.position
    assert after.policy_version == before.policy_version  # only data came
    for dataset_id in (SZ, HK):
        kept = _hashes(tail.batches_between(dataset_id, before.position + 1, after.position))
        assert len(kept) == 2
        assert kept == _from_store(ledger, dataset_id, before.position + 1, after.position)
    # A range the tail has not read (before it started) comes from the store, the same way.
    assert _hashes(tail.batches_between(SZ, 1, after.position)) == _from_store(
        ledger, SZ, 1, after.position
    )


def test_a_tail_keeping_few_records_still_serves_every_range(
    event_store_url: str, ledger: SnapshotLedger
) -> None:
    tail = LogTail(ledger, kept_records=15)  # fewer than two batches of 10
    before = tail.catch_up()
    _ingest(event_store_url, SZ, messages=3)

    after = tail.catch_up()

    assert _hashes(tail.batches_between(SZ, before.position + 1, after.position)) == (
        _from_store(ledger, SZ, before.position + 1, after.position)
    )


def test_a_governance_change_counts_as_a_policy_change(
    event_store_url: str, ledger: SnapshotLedger
) -> None:
    tail = LogTail(ledger)
    before = tail.catch_up()
    governance = Governance(event_store_url)
    try:
        governance.register_partner("mo", "Tail test partner", Classification.INTERNAL)
    finally:
        governance.close()

    after = tail.catch_up()

    assert after.policy_version > before.policy_version
    assert after.changed == after.policy_version


def test_a_kept_decision_gives_way_to_a_suspension_at_once(
    event_store_url: str, governed: GovernedStore
) -> None:
    subscription = subscribe_sse(event_store_url, MO_DSAT, SZ)
    feed = DeliveryFeed(event_store_url, b"tail-secret")
    governance = Governance(event_store_url)  # another application: as another process
    try:
        dataset = feed.dataset(SZ)
        now = datetime.now(UTC)
        kept = feed.decision(subscription, dataset, now)
        assert kept.allowed
        assert feed.decision(subscription, dataset, now) is kept  # kept, not decided again

        governance.suspend("sz-mo-traffic", "gd-shenzhen", "review")
        try:
            suspended = feed.decision(subscription, dataset, now)
            assert not suspended.allowed
            assert feed.page(subscription, 0).stopped is not None
        finally:
            governance.resume("sz-mo-traffic", "gd-shenzhen", DATASETS.__getitem__)

        assert feed.decision(subscription, dataset, now).allowed
    finally:
        governance.close()
        feed.close()


def test_a_kept_decision_is_not_used_past_the_agreements_expiry(
    event_store_url: str, governed: GovernedStore
) -> None:
    subscription = subscribe_sse(event_store_url, MO_DSAT, SZ)
    feed = DeliveryFeed(event_store_url, b"tail-secret")
    try:
        dataset = feed.dataset(SZ)
        agreement = Governance(event_store_url)
        try:
            valid_from = agreement.agreement("sz-mo-traffic").terms.valid_from
        finally:
            agreement.close()
        assert feed.decision(subscription, dataset, datetime.now(UTC)).allowed

        # Asked for a moment before the agreement began, the kept decision does not hold.
        assert not feed.decision(subscription, dataset, valid_from - timedelta(seconds=1)).allowed
    finally:
        feed.close()


def test_a_kept_page_is_the_page_once_everything_it_needs_is_kept(
    event_store_url: str, governed: GovernedStore
) -> None:
    subscription = subscribe_sse(event_store_url, MO_DSAT, SZ)
    feed = DeliveryFeed(event_store_url, b"tail-secret")
    try:
        before = feed.tail.catch_up()
        _ingest(event_store_url, SZ)
        tail = feed.tail.catch_up()
        assert feed.kept_page(subscription, before.position, 20, tail) is None  # nothing made

        page = feed.page(subscription, before.position, 20, tail=tail)
        kept = feed.kept_page(subscription, before.position, 20, tail)

        assert page.delivered
        assert kept is not None
        assert kept.through == page.through
        assert all(a is b for a, b in zip(kept.delivered, page.delivered, strict=True))
        # Older positions than the tail has read are never "kept": they come from the store.
        assert feed.kept_page(subscription, 0, 20, tail) is None
    finally:
        feed.close()


def test_after_a_long_pause_only_the_newest_batches_are_decoded_and_all_still_served(
    event_store_url: str, ledger: SnapshotLedger
) -> None:
    tail = LogTail(ledger, decode_window=1)  # only the newest position is decoded
    before = tail.catch_up()
    _ingest(event_store_url, SZ, messages=3)

    after = tail.catch_up()

    assert after.changed == after.position
    newest = tail.kept_batches(SZ, after.position, after.position)
    assert newest is not None
    assert [p for p, _ in newest] == [after.position]
    assert tail.kept_batches(SZ, before.position + 1, after.position) is None  # not decoded
    assert _hashes(tail.batches_between(SZ, before.position + 1, after.position)) == (
        _from_store(ledger, SZ, before.position + 1, after.position)
    )
