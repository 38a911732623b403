"""The ingest processor on its own, over a real SQLite store: exactly once per position."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from domain.dataset import DatasetDefinition
from domain.ingest import chain_id_for, verify_chain
from domain.provenance import Provenance
from storage.catalog import Catalog
from storage.ingestion import IngestLedger
from streams import wire
from streams.message_reading import Message
from streams.processor import IngestProcessor
from tests.support.platform import SENSOR_READINGS, reading_rows

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Catalog, IngestLedger, DatasetDefinition]]:
    url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    catalog, ledger = Catalog(url), IngestLedger(url)
    dataset = DatasetDefinition.from_dict(yaml.safe_load(SENSOR_READINGS.read_text()))
    catalog.register(dataset)
    try:
        yield catalog, ledger, dataset
    finally:
        ledger.close()
        catalog.close()


def _processor(catalog: Catalog, ledger: IngestLedger) -> IngestProcessor:
    return IngestProcessor(ledger, catalog, clock=lambda: NOW)


def _message(dataset: DatasetDefinition, prefix: str, count: int = 5) -> tuple[bytes, wire.Headers]:
    provenance = Provenance(
        "file:///x.csv", NOW, "c" * 64, "tabular", "1", "gd-shenzhen", wire.WIRE_SCHEMA_VERSION
    )
    rows = reading_rows(count, prefix=prefix, start=datetime(2026, 11, 26, tzinfo=UTC))
    headers = wire.headers_for(wire.KIND_RECORDS, dataset.id, provenance, None)
    return wire.encode_rows(rows), headers


def test_a_redelivered_message_is_recognised_and_not_stored_again(
    stores: tuple[Catalog, IngestLedger, DatasetDefinition],
) -> None:
    catalog, ledger, dataset = stores
    value, headers = _message(dataset, "a")
    processor = _processor(catalog, ledger)

    first = processor.process(dataset.ingest_topic, 0, 7, value, headers)
    again = processor.process(dataset.ingest_topic, 0, 7, value, headers)
    after_restart = _processor(catalog, ledger).process(dataset.ingest_topic, 0, 7, value, headers)

    assert (first.stored, first.accepted) == (True, 5)
    assert not again.stored
    assert not after_restart.stored
    assert ledger.resume_offset(dataset.ingest_topic, 0) == 7
    assert ledger.totals(dataset).accepted == 5


def test_records_sent_again_in_a_new_message_are_counted_as_duplicates(
    stores: tuple[Catalog, IngestLedger, DatasetDefinition],
) -> None:
    catalog, ledger, dataset = stores
    value, headers = _message(dataset, "b")
    processor = _processor(catalog, ledger)

    processor.process(dataset.ingest_topic, 1, 0, value, headers)
    resent = processor.process(dataset.ingest_topic, 1, 1, value, headers)

    assert (resent.stored, resent.accepted, resent.duplicates) == (True, 0, 5)
    assert ledger.totals(dataset).accepted == 5


def test_a_stale_worker_that_lost_its_partition_cannot_double_a_batch(
    stores: tuple[Catalog, IngestLedger, DatasetDefinition],
) -> None:
    catalog, ledger, dataset = stores
    zombie, successor = _processor(catalog, ledger), _processor(catalog, ledger)
    first, headers = _message(dataset, "c")
    second, _ = _message(dataset, "d")
    zombie.process(dataset.ingest_topic, 2, 0, first, headers)
    successor.process(dataset.ingest_topic, 2, 1, second, headers)

    # The zombie still believes it is at offset 0 with the old chain head.
    late = zombie.process(dataset.ingest_topic, 2, 1, second, headers)

    assert not late.stored
    assert ledger.totals(dataset).accepted == 10


def test_a_poison_message_is_stored_as_a_rejection_and_the_next_one_is_accepted(
    stores: tuple[Catalog, IngestLedger, DatasetDefinition],
) -> None:
    catalog, ledger, dataset = stores
    good, headers = _message(dataset, "e")
    processor = _processor(catalog, ledger)

    poison = processor.process(dataset.ingest_topic, 3, 0, b"\xa3\x00\x00\x80", headers)
    after = processor.process(dataset.ingest_topic, 3, 1, good, headers)

    assert (poison.stored, poison.accepted, poison.rejected) == (True, 0, 1)
    assert (after.accepted, after.rejected) == (5, 0)
    assert ledger.totals(dataset).rejected == 1


def test_messages_stored_together_each_become_a_batch_and_are_tracked_once(
    stores: tuple[Catalog, IngestLedger, DatasetDefinition],
) -> None:
    catalog, ledger, dataset = stores
    first, headers = _message(dataset, "f")
    second, _ = _message(dataset, "g")
    processor = _processor(catalog, ledger)

    outcomes = processor.process_many(
        dataset.ingest_topic,
        0,
        [Message(10, first, headers), Message(11, second, headers), Message(12, first, headers)],
    )
    redelivered = _processor(catalog, ledger).process_many(
        dataset.ingest_topic, 0, [Message(11, second, headers), Message(12, first, headers)]
    )

    assert [(o.accepted, o.duplicates) for o in outcomes] == [(5, 0), (5, 0), (0, 5)]
    assert not any(o.stored for o in redelivered)
    assert ledger.resume_offset(dataset.ingest_topic, 0) == 12
    batches = list(ledger.batches(chain_id_for(dataset.id, 0)))
    assert [b.source.rsplit("@", 1)[1] for b in batches] == ["10", "11", "12"]
    assert verify_chain(batches) is not None
