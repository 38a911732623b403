"""Geometry columns in Arrow and Parquet: WKB with GeoArrow and GeoParquet 1.1 metadata.

A geometry field's stored value is canonical GeoJSON in WGS-84 (domain.geometry). In Arrow
tables and snapshot files it is ISO WKB, little-endian and two-dimensional, in a binary
column whose field carries ``ARROW:extension:name = geoarrow.wkb``, so GeoPandas, DuckDB
and GDAL read it as geometry; snapshot files add the GeoParquet ``geo`` key. Serving code
turns WKB back into GeoJSON (JSON answers) or WKT (CSV answers).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import cast

import numpy as np
import pyarrow as pa
import shapely
from shapely.geometry import mapping, shape

GEOARROW_WKB = {b"ARROW:extension:name": b"geoarrow.wkb", b"ARROW:extension:metadata": b"{}"}
GEOPARQUET_VERSION = "1.1.0"


def geometry_field(name: str, nullable: bool) -> pa.Field:
    """An Arrow field for a geometry column."""
    return pa.field(name, pa.binary(), nullable=nullable, metadata=GEOARROW_WKB)


def is_geometry(field: pa.Field) -> bool:
    return field.metadata is not None and field.metadata.get(b"ARROW:extension:name") == (
        b"geoarrow.wkb"
    )


def wkb_array(values: Sequence[object]) -> pa.Array:
    """GeoJSON mappings (or None) as ISO WKB, deterministic for the same shapes."""
    geometries = np.empty(len(values), dtype=object)
    geometries[:] = [None if value is None else shape(value) for value in values]  # type: ignore[arg-type]
    wkb = shapely.to_wkb(geometries, byte_order=1, output_dimension=2, flavor="iso")
    return pa.array(wkb.tolist(), type=pa.binary())


def geometries_of(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A WKB column as an array of shapely geometries (None where null)."""
    values = column.to_numpy(zero_copy_only=False)
    return np.asarray(shapely.from_wkb(values), dtype=object)


def geojson_values(column: pa.Array | pa.ChunkedArray) -> list[dict[str, object] | None]:
    """A WKB column as GeoJSON geometry mappings with lists, ready for a JSON answer."""
    out: list[dict[str, object] | None] = []
    for geometry in geometries_of(column).tolist():
        out.append(None if geometry is None else cast(dict[str, object], _lists(mapping(geometry))))
    return out


def wkt_array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A WKB column as WKT text with full precision, for CSV answers."""
    text = shapely.to_wkt(geometries_of(column), rounding_precision=-1)
    return pa.array(text.tolist(), type=pa.string())


def intersects_box(
    column: pa.Array | pa.ChunkedArray, box: tuple[float, float, float, float]
) -> pa.Array:
    """True where the geometry intersects the box (edges included), False where it does not
    or is null."""
    geometries = geometries_of(column)
    hits = shapely.intersects(geometries, shapely.box(*box))
    return pa.array(np.asarray(hits, dtype=bool) & ~shapely.is_missing(geometries))


def geoparquet_metadata(columns: dict[str, pa.Array | pa.ChunkedArray]) -> bytes:
    """The GeoParquet ``geo`` key for these WKB columns (the first is primary).

    CRS is left out, which GeoParquet defines as OGC:CRS84: longitude/latitude on WGS-84.
    Geometry types and bounding boxes come from the data, so the same rows give the same
    bytes.
    """
    described: dict[str, object] = {}
    for name, column in columns.items():
        geometries = geometries_of(column)
        present = geometries[~shapely.is_missing(geometries)]
        kinds = sorted({_TYPE_NAMES[int(kind)] for kind in shapely.get_type_id(present)})
        bounds = shapely.total_bounds(present) if len(present) else None
        described[name] = {
            "encoding": "WKB",
            "geometry_types": kinds,
            "bbox": [] if bounds is None else [float(b) for b in bounds],
        }
    geo = {
        "version": GEOPARQUET_VERSION,
        "primary_column": next(iter(columns)),
        "columns": described,
    }
    return json.dumps(geo, sort_keys=True).encode()


_TYPE_NAMES = {
    0: "Point",
    1: "LineString",
    2: "LinearRing",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}


def _lists(value: object) -> object:
    if isinstance(value, tuple | list):
        return [_lists(item) for item in value]
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    return value
