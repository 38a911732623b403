"""Geometry columns in snapshot files: WKB with GeoParquet metadata, byte for byte the same."""

from __future__ import annotations

import io
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import shapely
from shapely.geometry import shape

from domain.dataset import DatasetDefinition
from domain.record import RecordValidator
from domain.region import RegionRegistry
from storage.parquet_snapshot import partition_files, records_table
from tests.support.geo_payloads import NOW

DATASET = DatasetDefinition.from_dict(
    {
        "id": "mo.geo.parcels",
        "kind": "geospatial",
        "owner_region": "mo",
        "title": "Parcels",
        "time_field": "valid_from",
        "key_fields": ["parcel"],
        "geometry": {"field": "outline", "crs": "EPSG:8433"},
        "fields": [
            {"name": "parcel", "type": "string"},
            {"name": "valid_from", "type": "timestamp"},
            {"name": "outline", "type": "geometry"},
        ],
    }
)


def _records() -> list[list[object]]:
    rows: list[dict[str, object]] = []
    for i in range(40):
        x, y = 113.54 + (i % 8) * 0.01, 22.15 + (i // 8) * 0.01
        outline: dict[str, object] | None = {
            "type": "Polygon",
            "coordinates": [[[x, y], [x + 0.005, y], [x + 0.005, y + 0.005], [x, y]]],
        }
        if i % 10 == 3:
            outline = {"type": "Point", "coordinates": [x, y]}
        if i % 10 == 7:
            outline = None
        day = 1 + i % 3
        rows.append(
            {"parcel": f"P{i}", "valid_from": f"2026-03-0{day}T00:00:00Z", "outline": outline}
        )
    batch = RecordValidator(DATASET, RegionRegistry.default()).validate(rows, "mo", NOW)
    assert batch.rejected == []
    return batch.accepted


def test_the_same_records_give_the_same_bytes_in_any_order_and_chunking() -> None:
    records = _records()
    first = partition_files(DATASET, records_table(DATASET, records))
    shuffled = records[:]
    random.Random(7).shuffle(shuffled)
    chunks = [records_table(DATASET, shuffled[i : i + 7]) for i in range(0, len(shuffled), 7)]
    second = partition_files(DATASET, pa.concat_tables(chunks))
    assert [f.data for f in first] == [f.data for f in second]
    assert len(first) == 3


def test_snapshot_files_hold_wkb_and_geoparquet_metadata() -> None:
    records = _records()
    by_id = {str(r[2]): r[4] for r in records}
    for part in partition_files(DATASET, records_table(DATASET, records)):
        table = pq.read_table(io.BytesIO(part.data))
        geo = json.loads(table.schema.metadata[b"geo"])
        assert geo["version"] == "1.1.0"
        assert geo["columns"]["outline"]["encoding"] == "WKB"
        assert geo["columns"]["outline"]["geometry_types"] == ["Point", "Polygon"]
        assert table.schema.field("outline").metadata[b"ARROW:extension:name"] == b"geoarrow.wkb"
        for parcel, wkb in zip(
            table["parcel"].to_pylist(), table["outline"].to_pylist(), strict=True
        ):
            stored = by_id[parcel]
            if stored is None:
                assert wkb is None
            else:
                assert isinstance(stored, dict)
                assert shapely.from_wkb(wkb).equals_exact(shape(stored), tolerance=0)
