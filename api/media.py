"""The formats records are served in, how a request chooses one, and how a page is encoded.

`format=` wins; otherwise the Accept header is honoured by quality value (RFC 9110), and a
request without one gets JSON.
"""

from __future__ import annotations

import io
from enum import StrEnum

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from api.errors import NotAcceptableError
from storage.geometry_column import geoparquet_metadata, is_geometry, wkt_array


class RecordFormat(StrEnum):
    """Formats a page of records can be served in."""

    JSON = "json"
    CSV = "csv"
    ARROW = "arrow"
    PARQUET = "parquet"


MEDIA_TYPES: dict[RecordFormat, str] = {
    RecordFormat.JSON: "application/json",
    RecordFormat.CSV: "text/csv",
    RecordFormat.ARROW: "application/vnd.apache.arrow.stream",
    RecordFormat.PARQUET: "application/vnd.apache.parquet",
}
_BY_MEDIA_TYPE = {media: fmt for fmt, media in MEDIA_TYPES.items()}


def negotiate(requested: RecordFormat | None, accept: str | None) -> RecordFormat:
    """The format to answer in; NotAcceptableError when the client accepts none of them."""
    if requested is not None:
        return requested
    if accept is None or not accept.strip():
        return RecordFormat.JSON
    ranges = [_media_range(part, order) for order, part in enumerate(accept.split(","))]
    best: tuple[float, int, int, RecordFormat] | None = None
    for quality, specificity, order, media in ranges:
        if quality <= 0:
            continue
        for fmt in _matching(media):
            candidate = (quality, specificity, -order, fmt)
            if best is None or candidate[:3] > best[:3]:
                best = candidate
            break
    if best is None:
        offered = ", ".join(MEDIA_TYPES.values())
        raise NotAcceptableError(
            f"Accept {accept!r} names none of the formats served: {offered} "
            "(or use format=json|csv|arrow|parquet)"
        )
    return best[3]


def _media_range(part: str, order: int) -> tuple[float, int, int, str]:
    media, *params = (piece.strip() for piece in part.split(";"))
    quality = 1.0
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
            if not 0 <= quality <= 1:
                quality = 0.0
    media = media.lower()
    specificity = 0 if media == "*/*" else 1 if media.endswith("/*") else 2
    return quality, specificity, order, media


def _matching(media: str) -> list[RecordFormat]:
    if media == "*/*":
        return [RecordFormat.JSON]
    if media.endswith("/*"):
        kind = media.removesuffix("*")
        return [fmt for fmt, full in MEDIA_TYPES.items() if full.startswith(kind)]
    found = _BY_MEDIA_TYPE.get(media)
    return [found] if found else []


def encode(table: pa.Table, fmt: RecordFormat) -> bytes:
    """A page as CSV, an Arrow IPC stream or a Parquet file (JSON is the response model's)."""
    if fmt is RecordFormat.CSV:
        return _csv(table)
    if fmt is RecordFormat.ARROW:
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue()
    if fmt is RecordFormat.PARQUET:
        sink = io.BytesIO()
        pq.write_table(_with_geo_metadata(table), sink, compression="zstd")
        return sink.getvalue()
    raise ValueError(f"{fmt} is not encoded here")


def _with_geo_metadata(table: pa.Table) -> pa.Table:
    """GeoParquet metadata for the page's geometry columns, so GIS tools read them."""
    geometry = {f.name: table[f.name] for f in table.schema if is_geometry(f)}
    if not geometry:
        return table
    metadata = {**(table.schema.metadata or {}), b"geo": geoparquet_metadata(geometry)}
    return table.replace_schema_metadata(metadata)


def _csv(table: pa.Table) -> bytes:
    """CSV with ISO 8601 UTC timestamps (2026-11-26T08:00:00.000000Z) and WKT geometries."""
    columns = [
        pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ", locale="C")
        if pa.types.is_timestamp(column.type)
        else wkt_array(column)
        if is_geometry(field)
        else column
        for field, column in zip(table.schema, table.columns, strict=True)
    ]
    sink = io.BytesIO()
    pacsv.write_csv(pa.Table.from_arrays(columns, names=table.column_names), sink)
    return sink.getvalue()
