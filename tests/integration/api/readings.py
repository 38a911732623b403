"""Road sensor readings stored through the ingest path in-process, snapshotted in part, and the
plain-Python answers the query API must agree with."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from domain.dataset import DatasetDefinition
from domain.provenance import Provenance
from domain.record import record_id_for, to_micros
from storage.catalog import Catalog
from storage.ingestion import IngestLedger
from storage.object_store import ObjectStore
from storage.snapshots import SnapshotBuilder, SnapshotLedger
from streams import wire
from streams.processor import IngestProcessor
from tests.support.platform import SENSOR_READINGS, reading_rows

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DAYS = 5
ROWS_PER_DAY = 2_000
MESSAGES = 20
FIRST_SNAPSHOT_AFTER = 10
SECOND_SNAPSHOT_AFTER = 16

Reading = dict[str, Any]


def sensor_readings() -> DatasetDefinition:
    return DatasetDefinition.from_dict(yaml.safe_load(SENSOR_READINGS.read_text()))


def source_rows() -> list[Reading]:
    """10,000 readings over three regions and six UTC days (each day's run crosses midnight)."""
    rows: list[Reading] = []
    for day in range(DAYS):
        start = datetime(2026, 11, 20, 23, 40, tzinfo=UTC) + timedelta(days=day)
        rows += reading_rows(ROWS_PER_DAY, prefix=f"d{day}-", start=start)
    return rows


def message_provenance(message: int) -> Provenance:
    return Provenance(
        f"file:///readings-{message:02d}.csv",
        NOW,
        f"{message:02d}" * 32,
        "tabular",
        "1",
        "gd-shenzhen",
        wire.WIRE_SCHEMA_VERSION,
    )


@dataclass
class StoredReadings:
    """What the fixture stored: the source rows as records, and which are only in the tail."""

    dataset: DatasetDefinition
    records: list[Reading]
    source_of: dict[str, str]
    tail_ids: set[str] = field(default_factory=set)
    snapshot_ids: list[str] = field(default_factory=list)

    def expected(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        region: str | None = None,
        bbox: tuple[float, float, float, float] | None = None,
    ) -> list[Reading]:
        """The records matching the filters, in (observed_at, record_id) order."""
        keep: list[Callable[[Reading], bool]] = []
        if start is not None:
            keep.append(lambda r: r["observed_at"] >= start)
        if end is not None:
            keep.append(lambda r: r["observed_at"] < end)
        if region is not None:
            keep.append(lambda r: r["region"] == region)
        if bbox is not None:
            west, south, east, north = bbox
            keep.append(lambda r: west <= r["lon"] <= east and south <= r["lat"] <= north)
        found = [r for r in self.records if all(test(r) for test in keep)]
        return sorted(found, key=lambda r: (r["observed_at"], r["record_id"]))


def as_record(dataset: DatasetDefinition, row: Reading) -> Reading:
    """A source row as the API returns it: id, region, then every field (None if absent)."""
    values = {name: row.get(name) for name in dataset.field_names}
    observed = to_micros(row["observed_at"])
    record_id = record_id_for(dataset.id, [row["sensor_id"], observed], observed)
    return {"record_id": record_id, "region": row["region"], **values}


def store_readings(event_store_url: str, store: ObjectStore) -> StoredReadings:
    """Register the dataset, ingest 20 messages of 500 readings on four partitions, and
    snapshot after the 10th and 16th message: the last 2,000 records stay in the tail."""
    dataset = sensor_readings()
    rows = source_rows()
    catalog, ledger = Catalog(event_store_url), IngestLedger(event_store_url)
    snapshot_ledger = SnapshotLedger(event_store_url)
    stored = StoredReadings(dataset, [as_record(dataset, row) for row in rows], {})
    try:
        catalog.register(dataset)
        processor = IngestProcessor(ledger, catalog, clock=lambda: NOW)
        builder = SnapshotBuilder(snapshot_ledger, catalog, store)
        for message in range(MESSAGES):
            chunk = rows[message::MESSAGES]
            provenance = message_provenance(message)
            headers = wire.headers_for(wire.KIND_RECORDS, dataset.id, provenance, None)
            outcome = processor.process(
                dataset.ingest_topic,
                message % dataset.partitions,
                message // dataset.partitions,
                wire.encode_rows(chunk),
                headers,
            )
            assert (outcome.accepted, outcome.rejected) == (len(chunk), 0)
            ids = [as_record(dataset, row)["record_id"] for row in chunk]
            stored.source_of.update(dict.fromkeys(ids, provenance.source_uri))
            if message >= SECOND_SNAPSHOT_AFTER:
                stored.tail_ids.update(ids)
            if message + 1 in (FIRST_SNAPSHOT_AFTER, SECOND_SNAPSHOT_AFTER):
                stored.snapshot_ids += [m.snapshot_id for m in builder.run_once()]
    finally:
        for application in (snapshot_ledger, ledger, catalog):
            application.close()
    return stored


def from_json(dataset: DatasetDefinition, records: Iterable[Reading]) -> list[Reading]:
    """JSON records with their timestamps read back into datetimes."""
    out = []
    for record in records:
        value = record.get(dataset.time_field)
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        out.append({**record, dataset.time_field: moment} if moment is not None else record)
    return out
