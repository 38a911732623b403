"""Snapshots are derived and deterministic: deleted and rebuilt, they are the same bytes."""

from __future__ import annotations

import io
import json
import struct
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
import yaml

from domain.dataset import DatasetDefinition
from domain.provenance import Provenance
from domain.snapshot import Manifest
from storage.catalog import Catalog
from storage.ingestion import IngestLedger
from storage.object_store import ObjectStore
from storage.object_store_local import LocalObjectStore
from storage.object_store_s3 import S3ObjectStore
from storage.snapshots import SnapshotBuilder, SnapshotLedger
from streams import wire
from streams.processor import IngestProcessor
from tests.support.platform import SENSOR_READINGS, reading_rows
from tests.support.services import S3Endpoint

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def event_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'events.sqlite'}"


@pytest.fixture
def ingested(event_store_url: str) -> Iterator[tuple[str, DatasetDefinition, IngestProcessor]]:
    catalog, ledger = Catalog(event_store_url), IngestLedger(event_store_url)
    dataset = DatasetDefinition.from_dict(yaml.safe_load(SENSOR_READINGS.read_text()))
    catalog.register(dataset)
    try:
        yield event_store_url, dataset, IngestProcessor(ledger, catalog, clock=lambda: NOW)
    finally:
        ledger.close()
        catalog.close()


def _ingest(
    processor: IngestProcessor,
    dataset: DatasetDefinition,
    prefix: str,
    count: int,
    first_offset: int,
) -> None:
    provenance = Provenance(
        "file:///readings.csv",
        NOW,
        "d" * 64,
        "tabular",
        "1",
        "gd-shenzhen",
        wire.WIRE_SCHEMA_VERSION,
    )
    headers = wire.headers_for(wire.KIND_RECORDS, dataset.id, provenance, None)
    rows = reading_rows(count, prefix=prefix, start=datetime(2026, 11, 25, 22, tzinfo=UTC))
    for index, start in enumerate(range(0, count, 500)):
        offset = first_offset + index
        processor.process(
            dataset.ingest_topic,
            index % 4,
            offset,
            wire.encode_rows(rows[start : start + 500]),
            headers,
        )


def _ingest_and_snapshot(
    ingested: tuple[str, DatasetDefinition, IngestProcessor],
    store: ObjectStore,
    prefix: str,
    count: int,
) -> list[Manifest]:
    url, dataset, processor = ingested
    snapshot_ledger, catalog = SnapshotLedger(url), Catalog(url)
    try:
        _ingest(processor, dataset, prefix, count, first_offset=0)
        return SnapshotBuilder(snapshot_ledger, catalog, store).run_once()
    finally:
        snapshot_ledger.close()
        catalog.close()


def test_deleted_snapshots_rebuild_to_the_same_bytes(
    ingested: tuple[str, DatasetDefinition, IngestProcessor], tmp_path: Path
) -> None:
    url, dataset, processor = ingested
    store = LocalObjectStore(tmp_path / "objects")
    snapshot_ledger, catalog = SnapshotLedger(url), Catalog(url)
    builder = SnapshotBuilder(snapshot_ledger, catalog, store)
    try:
        _ingest(processor, dataset, "first", 6_000, first_offset=0)
        first = builder.run_once()
        _ingest(processor, dataset, "second", 4_000, first_offset=100)
        second = builder.run_once()
        original = {info.key: info.sha256 for info in store.list("snapshots/")}
        for key in original:
            store.delete(key)

        rebuilt = [
            builder.build(dataset, p.first_position, p.last_position)
            for p in snapshot_ledger.publications(dataset.id)
        ]
        after = {info.key: info.sha256 for info in store.list("snapshots/")}
    finally:
        snapshot_ledger.close()
        catalog.close()

    assert [m.row_count for m in first + second] == [6_000, 4_000]
    assert rebuilt == first + second
    assert after == original
    assert len(original) > 4


def test_a_snapshot_is_readable_by_an_independent_parquet_reader(
    ingested: tuple[str, DatasetDefinition, IngestProcessor], tmp_path: Path
) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    [manifest] = _ingest_and_snapshot(ingested, store, "read", 3_000)

    files = pads.dataset(
        str(tmp_path / "objects" / "snapshots"),
        format="parquet",
        partitioning="hive",
        exclude_invalid_files=True,
    )
    table = files.to_table()
    assert table.num_rows == manifest.row_count == 3_000
    assert sorted(set(table["region"].to_pylist())) == ["gd-shenzhen", "hk", "mo"]
    assert {f.region for f in manifest.files} == {"gd-shenzhen", "hk", "mo"}


def test_a_snapshot_in_s3_is_readable_straight_from_the_bucket(
    ingested: tuple[str, DatasetDefinition, IngestProcessor], seaweed: S3Endpoint
) -> None:
    dataset = ingested[1]
    bucket = f"baylink-snapshots-{uuid.uuid4().hex[:8]}"
    store = S3ObjectStore(seaweed.endpoint, bucket, seaweed.access_key, seaweed.secret_key)
    [manifest] = _ingest_and_snapshot(ingested, store, "s3", 2_500)
    s3 = pafs.S3FileSystem(
        access_key=seaweed.access_key,
        secret_key=seaweed.secret_key,
        endpoint_override=seaweed.endpoint,
        region=seaweed.region,
        scheme="http",
    )

    files = pads.dataset(
        [f"{bucket}/{f.key}" for f in manifest.files],
        filesystem=s3,
        format="parquet",
        partitioning=pads.partitioning(flavor="hive"),
        partition_base_dir=f"{bucket}/snapshots/{dataset.id}/v1/{manifest.snapshot_id}",
    )

    table = files.to_table()
    assert table.num_rows == manifest.row_count == 2_500
    assert sorted(set(table["region"].to_pylist())) == ["gd-shenzhen", "hk", "mo"]


def test_snapshots_of_a_dataset_with_points_carry_geoparquet_metadata(
    ingested: tuple[str, DatasetDefinition, IngestProcessor], tmp_path: Path
) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    [manifest] = _ingest_and_snapshot(ingested, store, "geo", 1_000)

    part = pq.read_table(io.BytesIO(store.get(manifest.files[0].key)))
    geo = json.loads(part.schema.metadata[b"geo"])
    points = [struct.unpack("<BIdd", wkb) for wkb in part["geometry"].to_pylist()]

    assert geo["primary_column"] == "geometry"
    assert geo["columns"]["geometry"]["encoding"] == "WKB"
    assert geo["columns"]["geometry"]["geometry_types"] == ["Point"]
    assert [(x, y) for _, _, x, y in points] == list(
        zip(part["lon"].to_pylist(), part["lat"].to_pylist(), strict=True)
    )
    lons, lats = part["lon"].to_pylist(), part["lat"].to_pylist()
    assert geo["columns"]["geometry"]["bbox"] == [min(lons), min(lats), max(lons), max(lats)]
