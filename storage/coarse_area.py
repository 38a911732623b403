"""Box filters over coarsened locations, so that narrowing a box finds no more than cells.

Where a grant coarsens the location (to a grid or H3 cells), a box is matched against what
the partner receives, the cell's centre, never the exact location: a record is in the box
exactly when its cell's centre is, whatever the record's place in the cell. The store is
asked for a box widened by the most a cell reaches from its centre (every record whose cell
centre can lie in the box), then the coarsened rows are matched against the box itself.
"""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.compute as pc

from domain.dataset import DatasetDefinition
from domain.transformation import Transformation
from storage.geometry_column import intersects_box
from storage.h3_cells import cell_reach_km
from storage.query import BoundingBox

EARTH_RADIUS_KM = 6371.0088  # the mean radius, as H3 measures distances


def widened(box: BoundingBox, coarsening: Transformation) -> BoundingBox:
    """A box holding every location whose coarsened cell centre may lie in ``box``."""
    grid = coarsening.params.get("grid_degrees")
    if grid is not None:
        # A grid centre is at most half a cell from any of its points; a whole cell of
        # margin also covers the rounding of centres.
        margin = float(grid)
        return _clamped(box, margin, margin)
    reach = cell_reach_km(int(coarsening.params["h3_resolution"])) / EARTH_RADIUS_KM
    lat_margin = math.degrees(reach)
    south, north = box.min_lat - lat_margin, box.max_lat + lat_margin
    widest = math.radians(max(abs(south), abs(north)))
    if widest >= math.pi / 2 or math.sin(reach) >= math.cos(widest):
        return _clamped(box, lat_margin, 360.0)  # near a pole a cell may span any longitude
    return _clamped(box, lat_margin, math.degrees(math.asin(math.sin(reach) / math.cos(widest))))


def _clamped(box: BoundingBox, lat_margin: float, lon_margin: float) -> BoundingBox:
    west, east = box.min_lon - lon_margin, box.max_lon + lon_margin
    if west < -180 or east > 180:
        # Cells across the antimeridian: every longitude, rather than miss one side.
        west, east = -180.0, 180.0
    return BoundingBox(
        west, max(-90.0, box.min_lat - lat_margin), east, min(90.0, box.max_lat + lat_margin)
    )


def in_box(table: pa.Table, dataset: DatasetDefinition, box: BoundingBox) -> pa.Array:
    """For coarsened rows, whether their location (a cell centre) lies in the box, edges
    included; False where the location is missing."""
    point, feature = dataset.geometry, dataset.feature_geometry
    if point is not None and {point.lat, point.lon} <= set(table.column_names):
        lat, lon = table[point.lat], table[point.lon]
        inside = pc.and_kleene(
            pc.and_kleene(pc.greater_equal(lon, box.min_lon), pc.less_equal(lon, box.max_lon)),
            pc.and_kleene(pc.greater_equal(lat, box.min_lat), pc.less_equal(lat, box.max_lat)),
        )
        return pc.fill_null(inside, False).combine_chunks()
    if feature is not None and feature.field in table.column_names:
        edges = (box.min_lon, box.min_lat, box.max_lon, box.max_lat)
        return intersects_box(table[feature.field], edges)
    return pa.array([False] * table.num_rows, pa.bool_())
