"""Normalised records to deterministic Parquet: same records in, same bytes out.

Rows are sorted; compression, row-group size and page settings are fixed; nothing of the
wall clock or the host is written. Files are hive-partitioned by region and UTC day, and the
partition columns live in the path, not in the file.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from domain.dataset import DatasetDefinition, FieldType
from domain.record import NormalisedRecord
from storage.geometry_column import (
    geometry_field,
    geoparquet_metadata,
    is_geometry,
    wkb_array,
)

ROW_GROUP_SIZE = 131_072
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 3

_ARROW_TYPES: dict[FieldType, pa.DataType] = {
    FieldType.STRING: pa.string(),
    FieldType.INT64: pa.int64(),
    FieldType.FLOAT64: pa.float64(),
    FieldType.BOOL: pa.bool_(),
    FieldType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
}


def record_schema(dataset: DatasetDefinition) -> pa.Schema:
    """Columns of a dataset's records: record id, region, then the fields in schema order."""
    fields = [pa.field("record_id", pa.string(), nullable=False), pa.field("region", pa.string())]
    fields += [
        geometry_field(spec.name, nullable=not spec.required)
        if spec.type is FieldType.GEOMETRY
        else pa.field(spec.name, _ARROW_TYPES[spec.type], nullable=not spec.required)
        for spec in dataset.fields
    ]
    return pa.schema(fields)


def file_schema(dataset: DatasetDefinition) -> pa.Schema:
    """What a snapshot file holds: the record schema without the partition column ``region``,
    with the dataset's identity in the metadata."""
    schema = record_schema(dataset)
    schema = schema.remove(schema.get_field_index("region"))
    metadata = {
        b"baylink.dataset": dataset.id.encode(),
        b"baylink.schema_version": str(dataset.version).encode(),
    }
    return schema.with_metadata(metadata)


def records_table(dataset: DatasetDefinition, records: Sequence[NormalisedRecord]) -> pa.Table:
    """Normalised records as an Arrow table with the dataset's record schema."""
    schema = record_schema(dataset)
    columns: list[Sequence[object]] = (
        list(zip(*records, strict=True)) if records else [[] for _ in schema]
    )
    arrays = []
    for field_, values in zip(schema, columns, strict=True):
        if pa.types.is_timestamp(field_.type):
            arrays.append(pa.array(values, type=pa.int64()).cast(field_.type))
        elif is_geometry(field_):
            arrays.append(wkb_array(values))
        else:
            arrays.append(pa.array(values, type=field_.type))
    return pa.Table.from_arrays(arrays, schema=schema)


@dataclass(frozen=True, slots=True)
class PartitionFile:
    """The Parquet bytes of one (region, day) partition."""

    region: str
    date: str
    rows: int
    data: bytes


def _sort_keys(dataset: DatasetDefinition) -> list[tuple[str, str]]:
    return [(dataset.time_field, "ascending"), ("record_id", "ascending")]


def partition_files(dataset: DatasetDefinition, table: pa.Table) -> list[PartitionFile]:
    """Split by region and UTC day, sort each part, and write each deterministically."""
    if table.num_rows == 0:
        return []
    days = pc.strftime(table[dataset.time_field], format="%Y-%m-%d", locale="C")
    table = table.append_column("_day", days)
    keys = (
        table.group_by(["region", "_day"])
        .aggregate([])
        .sort_by([("region", "ascending"), ("_day", "ascending")])
    )
    out = []
    target = file_schema(dataset)
    for region, day in zip(keys["region"].to_pylist(), keys["_day"].to_pylist(), strict=True):
        mask = pc.and_(pc.equal(table["region"], region), pc.equal(table["_day"], day))
        part = table.filter(mask).sort_by(_sort_keys(dataset))
        part = part.drop_columns(["region", "_day"]).cast(target)
        if dataset.geometry is not None:
            part = with_point_geometry(part, dataset.geometry.lon, dataset.geometry.lat)
        elif dataset.feature_geometry is not None:
            part = with_feature_geometry(part, dataset)
        out.append(PartitionFile(str(region), str(day), part.num_rows, _parquet_bytes(part)))
    return out


_WKB_POINT = np.dtype([("order", "u1"), ("kind", "<u4"), ("x", "<f8"), ("y", "<f8")])


def with_point_geometry(table: pa.Table, lon: str, lat: str) -> pa.Table:
    """Add a WKB ``geometry`` column built from the WGS-84 point fields, with GeoParquet 1.1
    metadata (CRS omitted means OGC:CRS84, i.e. WGS-84 longitude/latitude)."""
    xs = table[lon].to_numpy(zero_copy_only=False)
    ys = table[lat].to_numpy(zero_copy_only=False)
    missing = np.isnan(xs) | np.isnan(ys)
    points = np.zeros(len(xs), dtype=_WKB_POINT)
    points["order"], points["kind"], points["x"], points["y"] = 1, 1, xs, ys
    wkb = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(_WKB_POINT.itemsize), len(points), [None, pa.py_buffer(points.tobytes())]
    ).cast(pa.binary())
    wkb = pc.if_else(pa.array(missing), pa.scalar(None, pa.binary()), wkb)
    present = ~missing
    bbox = (
        [
            float(xs[present].min()),
            float(ys[present].min()),
            float(xs[present].max()),
            float(ys[present].max()),
        ]
        if present.any()
        else []
    )
    geo = {
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Point"], "bbox": bbox}},
    }
    table = table.append_column(pa.field("geometry", pa.binary()), wkb)
    metadata = {**(table.schema.metadata or {}), b"geo": json.dumps(geo, sort_keys=True).encode()}
    return table.replace_schema_metadata(metadata)


def with_feature_geometry(table: pa.Table, dataset: DatasetDefinition) -> pa.Table:
    """GeoParquet 1.1 metadata for the dataset's geometry field (WKB already)."""
    declaration = dataset.feature_geometry
    assert declaration is not None
    geo = geoparquet_metadata({declaration.field: table[declaration.field]})
    return table.replace_schema_metadata({**(table.schema.metadata or {}), b"geo": geo})


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(
        table.combine_chunks(),  # row groups must not depend on how the input was chunked
        sink,
        row_group_size=ROW_GROUP_SIZE,
        compression=COMPRESSION,
        compression_level=COMPRESSION_LEVEL,
        use_dictionary=True,
        write_statistics=True,
        data_page_version="2.0",
        version="2.6",
    )
    return sink.getvalue()


def writer_description() -> dict[str, object]:
    """What wrote the files; a rebuild with another writer version may differ in bytes."""
    return {
        "pyarrow": pa.__version__,
        "compression": f"{COMPRESSION}:{COMPRESSION_LEVEL}",
        "row_group_size": ROW_GROUP_SIZE,
    }


def partition_key(prefix: str, region: str, date: str) -> str:
    return f"{prefix}/region={region}/date={date}/part-0.parquet"


def manifest_key(prefix: str) -> str:
    return f"{prefix}/manifest.json"
