"""What baylink's applications promise of the store, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from domain.dataset import DatasetDefinition
from domain.errors import DatasetAlreadyRegisteredError, DatasetNotFoundError
from domain.ingest import ChainHead, IngestChain, chain_id_for, next_batch, verify_chain
from domain.provenance import Provenance
from domain.record import NormalisedRecord, record_id_for
from domain.rejection import RejectedRecord, RejectionReason
from storage.catalog import Catalog
from storage.errors import BatchConflictError
from storage.ingestion import IngestLedger, outcome_of

pytestmark = pytest.mark.integration

SENSOR_READINGS_DATA: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parents[2] / "fixtures" / "datasets" / "sensor-readings.yaml").read_text(
        encoding="utf-8"
    )
)
SENSOR_READINGS = DatasetDefinition.from_dict(SENSOR_READINGS_DATA)
TOPIC = SENSOR_READINGS.ingest_topic


@pytest.fixture(params=["sqlite", "postgresql"])
def event_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def ledger(event_store_url: str) -> Iterator[IngestLedger]:
    app = IngestLedger(event_store_url)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def catalog(event_store_url: str) -> Iterator[Catalog]:
    app = Catalog(event_store_url)
    try:
        yield app
    finally:
        app.close()


def provenance(n: int = 0) -> Provenance:
    return Provenance(
        source_uri=f"file:///feeds/sensor-readings-{n}.jsonl",
        received_at=datetime(2025, 6, 1, 12, n % 60, 30, 123456, tzinfo=UTC),
        payload_sha256=f"{n:064x}",
        connector="tabular",
        connector_version="1.2.0",
        region="gd-shenzhen",
        wire_schema_version=1,
    )


def records(*sensors: str) -> list[NormalisedRecord]:
    observed = 1_748_779_200_000_000
    return [
        [
            record_id_for(SENSOR_READINGS.id, [sensor, observed], observed),
            "gd-shenzhen",
            sensor,
            observed,
            22.54,
            114.06,
            61.5,
            12,
            False,
            None,
        ]
        for sensor in sensors
    ]


def batch_after(
    head: ChainHead,
    accepted: list[NormalisedRecord],
    *,
    offset: int = 0,
    partition: int = 0,
    rejected: list[RejectedRecord] | None = None,
) -> IngestChain.BatchRecorded:
    return next_batch(
        head,
        dataset_id=SENSOR_READINGS.id,
        partition=partition,
        source=f"{TOPIC}:{partition}@{offset}",
        provenance=provenance(offset),
        accepted=accepted,
        rejected=rejected or [],
    )


def record(
    ledger: IngestLedger, batch: IngestChain.BatchRecorded, offset: int, partition: int = 0
) -> int:
    return ledger.record(
        batch,
        topic=TOPIC,
        partition=partition,
        offset=offset,
        record_ids=[str(r[0]) for r in batch.accepted()],
    )


def genesis(partition: int = 0) -> ChainHead:
    return ChainHead.genesis(chain_id_for(SENSOR_READINGS.id, partition))


def ids_of(accepted: list[NormalisedRecord]) -> list[str]:
    return [str(r[0]) for r in accepted]


def test_a_recorded_batch_indexes_its_records(ledger: IngestLedger) -> None:
    batch = batch_after(genesis(), records("a", "b", "c"))

    record(ledger, batch, offset=0)

    ids = ids_of(batch.accepted())
    assert ledger.existing_record_ids([*ids, "f" * 32]) == set(ids)
    for record_id in ids:
        assert ledger.ledger.locate_record(record_id) == (batch.originator_id, 1)


def test_an_unknown_record_is_not_found(ledger: IngestLedger) -> None:
    assert ledger.existing_record_ids([]) == set()
    assert ledger.existing_record_ids(["0" * 32]) == set()
    assert ledger.ledger.locate_record("0" * 32) is None


def test_many_record_ids_are_looked_up_at_once(ledger: IngestLedger) -> None:
    accepted = records(*(f"s{n}" for n in range(6_000)))
    record(ledger, batch_after(genesis(), accepted), offset=0)
    asked = [*ids_of(accepted), *(f"{n:032x}" for n in range(100))]

    assert ledger.existing_record_ids(asked) == set(ids_of(accepted))


def test_a_batch_repeating_a_chain_version_is_refused_and_leaves_no_index_rows(
    ledger: IngestLedger,
) -> None:
    first = batch_after(genesis(), records("a"))
    record(ledger, first, offset=0)
    rival = batch_after(genesis(), records("b", "c"), offset=1)

    with pytest.raises(BatchConflictError):
        record(ledger, rival, offset=1)

    assert ledger.existing_record_ids(ids_of(rival.accepted())) == set()
    assert ledger.resume_offset(TOPIC, 0) == 0
    assert list(ledger.batches(first.originator_id)) == [first]


@pytest.mark.parametrize("offset", [4, 3])
def test_a_batch_at_a_position_not_above_the_last_is_refused_and_leaves_no_index_rows(
    ledger: IngestLedger, offset: int
) -> None:
    first = batch_after(genesis(), records("a"), offset=4)
    record(ledger, first, offset=4)
    late = batch_after(ChainHead.after(first), records("b"), offset=offset)

    with pytest.raises(BatchConflictError):
        record(ledger, late, offset=offset)

    assert ledger.existing_record_ids(ids_of(late.accepted())) == set()
    assert ledger.chain_head(first.originator_id) == ChainHead.after(first)
    assert ledger.resume_offset(TOPIC, 0) == 4


def test_a_batch_repeating_a_stored_record_is_refused_whole(ledger: IngestLedger) -> None:
    first = batch_after(genesis(), records("a"))
    record(ledger, first, offset=0)
    again = batch_after(ChainHead.after(first), records("b", "a"), offset=1)

    with pytest.raises(BatchConflictError):
        record(ledger, again, offset=1)

    assert ledger.existing_record_ids(ids_of(records("b"))) == set()
    assert ledger.chain_head(first.originator_id) == ChainHead.after(first)
    assert ledger.resume_offset(TOPIC, 0) == 0


def test_a_large_batch_repeating_a_stored_record_is_a_conflict_not_an_outage(
    ledger: IngestLedger,
) -> None:
    # PostgreSQL answers before a large transaction is all sent; that answer must still be
    # told apart from an outage, which the worker would retry for ever.
    many = records(*(f"s{n}" for n in range(20_000)))
    first = batch_after(genesis(), many[:1])
    record(ledger, first, offset=0)

    with pytest.raises(BatchConflictError):
        record(ledger, batch_after(ChainHead.after(first), many, offset=1), offset=1)
    with pytest.raises(BatchConflictError):
        record(ledger, batch_after(genesis(), many[1:], offset=1), offset=1)

    record(ledger, batch_after(ChainHead.after(first), many[1:], offset=1), offset=1)
    assert ledger.existing_record_ids(ids_of(many)) == set(ids_of(many))
    assert ledger.resume_offset(TOPIC, 0) == 1


def test_resume_offset_is_the_last_tracked_offset_of_each_partition(
    ledger: IngestLedger,
) -> None:
    assert ledger.resume_offset(TOPIC, 0) is None

    head = genesis()
    for offset in (0, 1, 7):
        batch = batch_after(head, records(f"s{offset}"), offset=offset)
        record(ledger, batch, offset=offset)
        head = ChainHead.after(batch)
    record(ledger, batch_after(genesis(2), records("x"), partition=2), offset=40, partition=2)

    assert ledger.resume_offset(TOPIC, 0) == 7
    assert ledger.resume_offset(TOPIC, 2) == 40
    assert ledger.resume_offset(TOPIC, 1) is None
    assert ledger.resume_offset("baylink.ingest.other.v1", 0) is None


def test_recording_the_same_offset_twice_is_a_conflict(ledger: IngestLedger) -> None:
    first = batch_after(genesis(), records("a"))
    record(ledger, first, offset=0)
    redelivered = batch_after(ChainHead.after(first), records("b"), offset=0)

    with pytest.raises(BatchConflictError):
        record(ledger, redelivered, offset=0)


def test_record_returns_the_batch_notification_id(ledger: IngestLedger) -> None:
    before = ledger.position()

    notification_id = record(ledger, batch_after(genesis(), records("a")), offset=0)

    assert notification_id == ledger.position() == before + 1


def test_batches_read_back_in_order_and_their_chain_still_verifies(ledger: IngestLedger) -> None:
    head = genesis()
    written = []
    for offset in range(4):
        rejected = [
            RejectedRecord(0, RejectionReason.NOT_FINITE, "field 'speed' is nan", None, "{...}")
        ]
        batch = batch_after(head, records(f"s{offset}"), offset=offset, rejected=rejected)
        record(ledger, batch, offset=offset)
        written.append(batch)
        head = ChainHead.after(batch)

    read = list(ledger.batches(head.chain_id))

    assert read == written
    assert verify_chain(read) == head
    assert list(ledger.batches(head.chain_id, after=2)) == written[2:]
    assert read[1].accepted() == records("s1")
    assert read[1].rejected()[0].reason is RejectionReason.NOT_FINITE
    assert Provenance.from_dict(read[1].provenance) == provenance(1)


def test_chain_head_follows_the_last_batch(ledger: IngestLedger) -> None:
    chain = chain_id_for(SENSOR_READINGS.id, 0)
    assert ledger.chain_head(chain) == ChainHead.genesis(chain)

    first = batch_after(genesis(), records("a", "b"))
    record(ledger, first, offset=0)
    second = batch_after(ChainHead.after(first), records("c"), offset=1)
    record(ledger, second, offset=1)

    assert ledger.chain_head(chain) == ChainHead(chain, 2, second.hash, 3, 0)


def test_totals_add_up_every_partition_of_a_dataset(ledger: IngestLedger) -> None:
    reject = [RejectedRecord(1, RejectionReason.WRONG_TYPE, "field 'speed' must be a number")]
    record(ledger, batch_after(genesis(0), records("a", "b"), rejected=reject), offset=0)
    record(ledger, batch_after(genesis(3), records("c"), partition=3), offset=0, partition=3)

    totals = ledger.totals(SENSOR_READINGS)

    assert (totals.accepted, totals.rejected) == (3, 1)


def test_outcome_counts_only_the_batches_of_the_given_sources(ledger: IngestLedger) -> None:
    reject = [RejectedRecord(1, RejectionReason.WRONG_TYPE, "field 'speed' must be a number")]
    first = batch_after(genesis(), records("a", "b"), rejected=reject)
    record(ledger, first, offset=0)
    second = batch_after(ChainHead.after(first), records("c"), offset=1)
    record(ledger, second, offset=1)

    outcome = outcome_of(ledger, SENSOR_READINGS, {}, {first.source})

    assert (outcome.accepted, outcome.rejected, outcome.stored_messages) == (2, 1, 1)
    assert outcome.reasons == {"wrong-type": 1}


def _revised(**changes: Any) -> DatasetDefinition:
    return DatasetDefinition.from_dict({**copy.deepcopy(SENSOR_READINGS_DATA), **changes})


def _other_fields() -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = copy.deepcopy(SENSOR_READINGS_DATA["fields"])
    fields.append({"name": "heading", "type": "float64", "unit": "degree"})
    return fields


def test_registering_the_same_definition_twice_changes_nothing(catalog: Catalog) -> None:
    assert catalog.register(SENSOR_READINGS) is True
    position = catalog.position()

    assert catalog.register(SENSOR_READINGS) is False
    assert catalog.position() == position
    assert catalog.get(SENSOR_READINGS.id) == SENSOR_READINGS


def test_changing_fields_without_a_new_version_is_refused(catalog: Catalog) -> None:
    catalog.register(SENSOR_READINGS)

    with pytest.raises(DatasetAlreadyRegisteredError, match=r"gba\.traffic\.sensor-readings"):
        catalog.register(_revised(fields=_other_fields()))
    with pytest.raises(DatasetAlreadyRegisteredError):
        catalog.register(_revised(key_fields=["sensor_id", "observed_at", "lat"]))

    assert catalog.get(SENSOR_READINGS.id) == SENSOR_READINGS


def test_a_new_version_may_change_fields_and_a_title_may_change_any_time(
    catalog: Catalog,
) -> None:
    catalog.register(SENSOR_READINGS)
    retitled = _revised(title={"en": "Road sensor readings (Shenzhen)"})

    assert catalog.register(retitled) is True
    assert catalog.get(SENSOR_READINGS.id) == retitled

    version_2 = _revised(version=2, fields=_other_fields())
    assert catalog.register(version_2) is True
    assert catalog.get(SENSOR_READINGS.id) == version_2
    assert [d.id for d in catalog.list()] == [SENSOR_READINGS.id]


def test_the_catalog_lists_every_registered_dataset(catalog: Catalog, event_store_url: str) -> None:
    assert catalog.list() == []
    ids = ["mo.economic.visitor-arrivals", "gd-guangzhou.geospatial.stations", "hk.traffic.speed"]
    definitions = [_revised(id=dataset_id) for dataset_id in ids]
    for definition in definitions:
        catalog.register(definition)

    other = Catalog(event_store_url)
    try:
        listed = other.list()
    finally:
        other.close()

    assert listed == sorted(definitions, key=lambda d: d.id)


def test_an_unregistered_dataset_is_not_found(catalog: Catalog) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"hk\.traffic\.nothing"):
        catalog.get("hk.traffic.nothing")
