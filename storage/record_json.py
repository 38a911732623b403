"""Records as JSON-ready rows, the one form the query API and the delivery feed both send."""

from __future__ import annotations

import pyarrow as pa

from storage.geometry_column import geojson_values, is_geometry


def json_records(table: pa.Table) -> list[dict[str, object]]:
    """Rows of ``table`` as dicts: geometries as GeoJSON geometry objects."""
    records: list[dict[str, object]] = table.to_pylist()
    for field in table.schema:
        if is_geometry(field):
            for record, value in zip(records, geojson_values(table[field.name]), strict=True):
                record[field.name] = value
    return records
