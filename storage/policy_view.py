"""A policy decision applied to a table of records: the partner's view of them.

Both enforcement points read records as Arrow tables (the query API from snapshots and the
tail, the delivery relay from the log), so the decision's columns and transformations are
applied here, once, with Arrow compute where it has the operation.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from domain.dataset import DatasetDefinition
from domain.policy import Decision
from domain.record import SYSTEM_COLUMNS
from domain.transformation import H3_CELL_COLUMN, Transformation, TransformationKind
from storage.geometry_column import geometry_field
from storage.h3_cells import coarsen_geometries, coarsen_points, coarser_cells

MASK = "****"
PSEUDONYM_HEX_DIGITS = 32


def pseudonym_key(secret: bytes, consumer: str) -> bytes:
    """The key one consumer's pseudonyms are made with: distinct per consumer, so two
    partners cannot join their views of the same person by pseudonym."""
    return hmac.new(secret, b"baylink-pseudonym\x1f" + consumer.encode(), hashlib.sha256).digest()


def partner_view(
    table: pa.Table, dataset: DatasetDefinition, decision: Decision, key: bytes
) -> pa.Table:
    """``table`` (records in the dataset's record schema) as the decision lets its caller see
    it: only the decided columns (plus record id and region), each transformation applied.
    A denied decision sees nothing."""
    if not decision.allowed:
        return table.schema.empty_table().select([])
    keep = [c for c in (*SYSTEM_COLUMNS, *decision.columns) if c in table.column_names]
    view = table.select(keep)
    aggregate: Transformation | None = None
    # Locations are coarsened after drops, so a dropped coordinate takes its pair with it.
    ordered = sorted(
        decision.transformations, key=lambda t: t.kind is TransformationKind.COARSEN_LOCATION
    )
    for transformation in ordered:
        if transformation.kind is TransformationKind.AGGREGATE:
            aggregate = transformation
            continue
        view = _apply(view, dataset, transformation, key)
    if aggregate is not None:
        view = aggregated(view, dataset, aggregate)
    return view


def _apply(
    table: pa.Table, dataset: DatasetDefinition, transformation: Transformation, key: bytes
) -> pa.Table:
    kind, name = transformation.kind, transformation.field
    if kind is TransformationKind.COARSEN_LOCATION:
        return _coarsen_location(table, dataset, transformation)
    if name is None or name not in table.column_names:
        return table
    index = table.column_names.index(name)
    column = table.column(name)
    if kind is TransformationKind.DROP:
        return table.remove_column(index)
    if kind is TransformationKind.MASK:
        replaced = _masked(column, int(transformation.params.get("keep", 0)))
    elif kind is TransformationKind.PSEUDONYMISE:
        replaced = _pseudonymised(column, key)
    else:  # COARSEN_TIME
        replaced = pc.floor_temporal(column, unit=str(transformation.params["unit"]))
    return table.set_column(index, pa.field(name, replaced.type), replaced)


def _masked(column: pa.ChunkedArray, keep: int) -> pa.ChunkedArray:
    # The same mask whatever the length, so the length of the value is not given away.
    if keep == 0:
        return pc.if_else(pc.is_null(column), pa.scalar(None, pa.string()), MASK)
    tail = pc.utf8_slice_codeunits(column, start=-keep)
    return pc.binary_join_element_wise(MASK, tail, "")


def _pseudonymised(column: pa.ChunkedArray, key: bytes) -> pa.ChunkedArray:
    encoded = column.combine_chunks().dictionary_encode()
    names = [
        None
        if value is None
        else hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX_DIGITS]
        for value in encoded.dictionary.to_pylist()
    ]
    return pa.chunked_array([pc.take(pa.array(names, pa.string()), encoded.indices)])


def _coarsen_location(
    table: pa.Table, dataset: DatasetDefinition, transformation: Transformation
) -> pa.Table:
    resolution = transformation.params.get("h3_resolution")
    if resolution is not None:
        return _to_cells(table, dataset, int(resolution))
    point = dataset.geometry
    if point is None:
        return table  # grids coarsen points only (Transformation.check_against)
    size = float(transformation.params["grid_degrees"])
    for name in (point.lat, point.lon):
        if name in table.column_names:
            index = table.column_names.index(name)
            centred = _grid_centres(table.column(name), size)
            table = table.set_column(index, pa.field(name, pa.float64()), centred)
    return table


def _to_cells(table: pa.Table, dataset: DatasetDefinition, resolution: int) -> pa.Table:
    """The location as its H3 cell: the cell's centre where the location was, and the cell's
    index in ``h3_cell``. A location the decision withholds stays withheld."""
    point, feature = dataset.geometry, dataset.feature_geometry
    cells: pa.Array | None = None
    if point is not None and {point.lat, point.lon} <= set(table.column_names):
        lat, lon, cells = coarsen_points(table[point.lat], table[point.lon], resolution)
        for name, values in ((point.lat, lat), (point.lon, lon)):
            index = table.column_names.index(name)
            table = table.set_column(index, pa.field(name, pa.float64()), values)
    elif point is not None:
        # One coordinate without the other is still an exact coordinate.
        table = table.drop_columns([n for n in (point.lat, point.lon) if n in table.column_names])
    if feature is not None and feature.field in table.column_names:
        index = table.column_names.index(feature.field)
        wkb, cells = coarsen_geometries(table[feature.field], resolution)
        nullable = table.schema.field(feature.field).nullable
        table = table.set_column(index, geometry_field(feature.field, nullable), wkb)
    if (
        feature is not None
        and feature.h3_field is not None
        and feature.h3_field in table.column_names
    ):
        index = table.column_names.index(feature.h3_field)
        coarser = coarser_cells(table[feature.h3_field], resolution)
        table = table.set_column(index, pa.field(feature.h3_field, pa.string()), coarser)
    if cells is not None and H3_CELL_COLUMN in table.column_names:
        index = table.column_names.index(H3_CELL_COLUMN)  # a companion of that name
        table = table.set_column(index, pa.field(H3_CELL_COLUMN, pa.string()), cells)
    elif cells is not None:
        table = table.append_column(pa.field(H3_CELL_COLUMN, pa.string()), cells)
    return table


def _grid_centres(column: pa.ChunkedArray, size: float) -> pa.ChunkedArray:
    """Each coordinate replaced by the centre of its grid cell (cells start at 0)."""
    cells = pc.floor(pc.divide(pc.cast(column, pa.float64()), size))
    centres = pc.multiply(pc.add(cells, 0.5), size)
    digits = max(0, -math.floor(math.log10(size)) + 2)
    return pc.round(centres, digits)


def aggregated(
    table: pa.Table, dataset: DatasetDefinition, transformation: Transformation
) -> pa.Table:
    """Rows summarised per time window and groups; groups under ``min_count`` are left out."""
    params = transformation.params
    window = str(params["window"])
    group_by: Sequence[str] = [str(g) for g in params.get("group_by", [])]
    measures: dict[str, str] = {str(k): str(v) for k, v in params.get("measures", {}).items()}
    min_count = int(params["min_count"])
    time_name = dataset.time_field
    if time_name not in table.column_names:
        return table.schema.empty_table().select([])
    windowed = table.append_column(
        "window_start", pc.floor_temporal(table.column(time_name), unit=window)
    )
    keys = ["window_start", *[g for g in group_by if g in windowed.column_names]]
    wanted = [
        (name, how) for name, how in sorted(measures.items()) if name in windowed.column_names
    ]
    grouped = windowed.group_by(keys).aggregate(
        [("record_id", "count"), *[(name, how) for name, how in wanted]]
    )
    grouped = grouped.filter(pc.greater_equal(grouped.column("record_id_count"), min_count))
    names = [*keys, "count", *[f"{how}_{name}" for name, how in wanted]]
    ordered = grouped.select(
        [*keys, "record_id_count", *[f"{name}_{how}" for name, how in wanted]]
    ).rename_columns(names)
    return ordered.sort_by([(k, "ascending") for k in keys])
