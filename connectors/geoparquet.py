"""GeoParquet files (1.0 and 1.1, WKB encoding) translated into rows of a dataset's fields.

The primary geometry column goes into the dataset's geometry field; every other column is a
property. The CRS is the ``--crs`` option's, else the column's ``crs`` (PROJJSON, matched to
its EPSG code; absent means OGC:CRS84 by the GeoParquet specification, so a declaration of
WGS-84), else, when the file says ``crs: null`` (unknown), the dataset's. Other geometry
columns and bounding-box covering columns are left out and named in the notes. A payload
that is not Parquet, has no ``geo`` metadata or uses another encoding raises PayloadError.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.crs import CrsError, identified_crs
from connectors.errors import PayloadError
from connectors.features import FeatureTranslator, arrow_features, declared_geometry, source_crs
from connectors.payload import ParsedPayload
from domain.dataset import DatasetDefinition
from domain.geo import WGS84

NAME = "geoparquet"
VERSION = "1"
FORMAT = "geoparquet"
_ABSENT = object()


def parse_geoparquet(
    data: bytes, dataset: DatasetDefinition, crs: str | None = None
) -> ParsedPayload:
    """Read a GeoParquet file's features; ``crs`` is the ``--crs`` override."""
    declared_geometry(dataset)
    table = _table(data)
    geo = _geo_metadata(table.schema)
    primary = geo.get("primary_column")
    columns = geo.get("columns")
    if not isinstance(columns, Mapping) or not isinstance(primary, str) or primary not in columns:
        raise PayloadError("not-geoparquet", "the geo metadata names no primary column")
    if primary not in table.column_names:
        raise PayloadError("not-geoparquet", f"the primary geometry column {primary!r} is missing")
    column = columns[primary]
    if not isinstance(column, Mapping):
        raise PayloadError("not-geoparquet", f"the geo metadata of {primary!r} is not an object")
    encoding = column.get("encoding")
    if not isinstance(encoding, str) or encoding.upper() != "WKB":
        raise PayloadError(
            "unsupported-encoding",
            f"column {primary!r} is encoded as {str(encoding)[:40]!r}; only WKB is read",
        )
    if not pa.types.is_binary(table.schema.field(primary).type) and not pa.types.is_large_binary(
        table.schema.field(primary).type
    ):
        raise PayloadError("not-geoparquet", f"the WKB column {primary!r} is not binary")
    chosen, notes = source_crs(dataset, crs, _declared_crs(column.get("crs", _ABSENT)))
    skipped = sorted(str(name) for name in columns if name != primary) + _coverings(column)
    skipped = [name for name in skipped if name in table.column_names]
    if skipped:
        notes.append(f"columns that are not properties were left out: {skipped}")
    if column.get("edges") == "spherical":
        notes.append("the file declares spherical edges; they are stored as planar")
    translator = FeatureTranslator(dataset, chosen)
    rows = translator.rows(arrow_features(table, primary, skipped))
    return ParsedPayload(rows=rows, format=FORMAT, notes=(*notes, *translator.notes(rows)))


def _table(data: bytes) -> pa.Table:
    if not data:
        raise PayloadError("empty-payload", "the payload holds no data")
    try:
        table = pq.read_table(pa.BufferReader(data))
        table.column_names  # noqa: B018 - names that are not UTF-8 fail here, not later
    except (pa.ArrowException, OSError, ValueError, IndexError, TypeError) as error:
        raise PayloadError(
            "not-parquet", f"not a readable Parquet file: {str(error)[:200]}"
        ) from None
    return table


def _geo_metadata(schema: pa.Schema) -> dict[str, object]:
    raw = (schema.metadata or {}).get(b"geo")
    if raw is None:
        raise PayloadError(
            "not-geoparquet", "the Parquet file has no geo metadata: it is not GeoParquet"
        )
    try:
        geo = json.loads(raw)
    except (ValueError, RecursionError):
        raise PayloadError("not-geoparquet", "the geo metadata is not JSON") from None
    if not isinstance(geo, dict):
        raise PayloadError("not-geoparquet", "the geo metadata is not a JSON object")
    return geo


def _declared_crs(crs: object) -> str | None:
    if crs is _ABSENT:
        return WGS84  # GeoParquet: a column without "crs" is OGC:CRS84
    if crs is None:
        return None  # "crs": null says the CRS is unknown: nothing is declared
    if not isinstance(crs, str | dict):
        raise PayloadError("unknown-crs", "the column's crs is neither PROJJSON nor text")
    try:
        return identified_crs(crs)
    except CrsError as error:
        raise PayloadError("unknown-crs", f"the column's crs: {error}") from None


def _coverings(column: Mapping[str, object]) -> list[str]:
    covering = column.get("covering")
    bbox = covering.get("bbox") if isinstance(covering, Mapping) else None
    if not isinstance(bbox, Mapping):
        return []
    return sorted({str(path[0]) for path in bbox.values() if isinstance(path, list) and path})
