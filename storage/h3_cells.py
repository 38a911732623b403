"""Locations coarsened to H3 cells, for grants that share a location only as a cell.

A coarsened location is a function of its cell alone: the cell's index (``h3_cell``) and the
cell's centre, rounded to about a hundredth of the cell's edge, so no value tells a partner
more than which cell the location is in. Points are coarsened by their own cell; a whole
geometry (a road, a district) by the cell of its representative point, which lies on or in
the geometry, and becomes that cell's centre as a point.
"""

from __future__ import annotations

import math
from functools import cache

import h3
import numpy as np
import pyarrow as pa
import shapely

from storage.geometry_column import geometries_of

_KM_PER_DEGREE = 111.32  # of latitude; a degree of longitude is never longer


@cache
def centre_decimals(resolution: int) -> int:
    """Decimal places of a cell centre at ``resolution``: about a hundredth of the edge."""
    edge_degrees = h3.average_hexagon_edge_length(resolution, unit="km") / _KM_PER_DEGREE
    return max(0, math.ceil(-math.log10(edge_degrees)) + 2)


@cache
def cell_centre(cell: str) -> tuple[float, float]:
    """The cell's centre (lat, lon), rounded to its resolution's decimals."""
    lat, lon = h3.cell_to_latlng(cell)
    digits = centre_decimals(h3.get_resolution(cell))
    return round(lat, digits), round(lon, digits)


def cell_of(lat: float | None, lon: float | None, resolution: int) -> str | None:
    """The cell holding the point, or None where the point is missing or not a number."""
    if lat is None or lon is None or not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    return str(h3.latlng_to_cell(lat, lon, resolution))


def coarsen_points(
    lat: pa.ChunkedArray, lon: pa.ChunkedArray, resolution: int
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Each point as its cell: the cell centre's lat and lon, and the cell index."""
    cells = [
        cell_of(y, x, resolution) for y, x in zip(lat.to_pylist(), lon.to_pylist(), strict=True)
    ]
    lats, lons = _centres(cells)
    return lats, lons, pa.array(cells, pa.string())


def coarsen_geometries(column: pa.ChunkedArray, resolution: int) -> tuple[pa.Array, pa.Array]:
    """Each geometry (WKB) as the centre of the cell of its representative point (WKB), and
    that cell's index; null or empty geometries stay null."""
    geometries = geometries_of(column)
    present = ~(shapely.is_missing(geometries) | shapely.is_empty(geometries))
    anchors = np.full(len(geometries), None, dtype=object)
    anchors[present] = shapely.point_on_surface(geometries[present])
    cells = [
        None if anchor is None else cell_of(anchor.y, anchor.x, resolution)
        for anchor in anchors.tolist()
    ]
    lats, lons = (a.to_pylist() for a in _centres(cells))
    points = np.full(len(cells), None, dtype=object)
    for index, (y, x) in enumerate(zip(lats, lons, strict=True)):
        if y is not None and x is not None:
            points[index] = shapely.Point(x, y)
    wkb = shapely.to_wkb(points, byte_order=1, output_dimension=2, flavor="iso")
    return pa.array(wkb.tolist(), pa.binary()), pa.array(cells, pa.string())


def coarser_cells(column: pa.ChunkedArray, resolution: int) -> pa.Array:
    """H3 cell indexes no finer than ``resolution``: finer ones replaced by their parent."""
    out: list[str | None] = []
    for cell in column.to_pylist():
        if cell is None or not h3.is_valid_cell(cell):
            out.append(None)
        elif h3.get_resolution(cell) > resolution:
            out.append(str(h3.cell_to_parent(cell, resolution)))
        else:
            out.append(str(cell))
    return pa.array(out, pa.string())


def _centres(cells: list[str | None]) -> tuple[pa.Array, pa.Array]:
    centres = [None if cell is None else cell_centre(cell) for cell in cells]
    lats = [None if c is None else c[0] for c in centres]
    lons = [None if c is None else c[1] for c in centres]
    return pa.array(lats, pa.float64()), pa.array(lons, pa.float64())


_REACH_PER_EDGE = 1.5
"""Bound on how far a cell reaches from its centre, in mean edge lengths of its resolution:
the farthest vertex of any cell is within 1.1 of them (tests/unit/storage/test_h3_cells.py)."""


def cell_reach_km(resolution: int) -> float:
    """No point of a cell at ``resolution`` is farther than this from the cell's centre."""
    return _REACH_PER_EDGE * float(h3.average_hexagon_edge_length(resolution, unit="km"))
