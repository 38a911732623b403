"""Locations coarsened to H3 cells: the cell holds the location, the same location always
gives the same cell, and nothing sent says more than which cell it is."""

from __future__ import annotations

import math

import h3
import pyarrow as pa
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.transformation import Transformation, TransformationKind
from storage.coarse_area import EARTH_RADIUS_KM, widened
from storage.geometry_column import geometries_of, wkb_array
from storage.h3_cells import (
    cell_reach_km,
    centre_decimals,
    coarsen_geometries,
    coarsen_points,
    coarser_cells,
)
from storage.query import BoundingBox

latitudes = st.floats(min_value=-90, max_value=90, allow_nan=False)
longitudes = st.floats(min_value=-180, max_value=180, allow_nan=False)
resolutions = st.integers(min_value=0, max_value=15)


def _one_point(lat: float, lon: float, resolution: int) -> tuple[float, float, str]:
    lats, lons, cells = coarsen_points(
        pa.chunked_array([[lat]], pa.float64()), pa.chunked_array([[lon]], pa.float64()), resolution
    )
    return lats[0].as_py(), lons[0].as_py(), cells[0].as_py()


def _decimals(value: float) -> int:
    text = repr(value)
    return 0 if "e" in text or "." not in text else len(text.split(".")[1].rstrip("0"))


@settings(max_examples=500, deadline=None)
@given(latitudes, longitudes, resolutions)
def test_the_cell_holds_the_point_and_its_centre(lat: float, lon: float, resolution: int) -> None:
    centre_lat, centre_lon, cell = _one_point(lat, lon, resolution)

    assert h3.get_resolution(cell) == resolution
    # The point is no farther from the centre sent than the cell's farthest vertex.
    reach = max(
        h3.great_circle_distance(h3.cell_to_latlng(cell), vertex, unit="km")
        for vertex in h3.cell_to_boundary(cell)
    )
    assert h3.great_circle_distance((lat, lon), (centre_lat, centre_lon), unit="km") <= (
        reach * 1.01 + 1e-6
    )
    # The rounded centre is still in the cell.
    assert h3.latlng_to_cell(centre_lat, centre_lon, resolution) == cell


@settings(max_examples=300, deadline=None)
@given(latitudes, longitudes, resolutions, st.integers(min_value=0, max_value=6))
def test_every_point_of_a_cell_is_sent_as_the_same_values(
    lat: float, lon: float, resolution: int, child: int
) -> None:
    cell = h3.latlng_to_cell(lat, lon, resolution)
    children = h3.cell_to_children(cell, min(resolution + 1, 15))
    other = h3.cell_to_latlng(sorted(children)[child % len(children)])

    first = _one_point(lat, lon, resolution)

    assert _one_point(lat, lon, resolution) == first  # the same point, the same answer
    assert _one_point(other[0], other[1], resolution) == first  # another point of the cell, too


@settings(max_examples=300, deadline=None)
@given(latitudes, longitudes, resolutions)
def test_no_value_sent_is_finer_than_the_resolution(
    lat: float, lon: float, resolution: int
) -> None:
    centre_lat, centre_lon, _cell = _one_point(lat, lon, resolution)

    digits = centre_decimals(resolution)
    assert _decimals(centre_lat) <= digits
    assert _decimals(centre_lon) <= digits
    # Those digits resolve about a hundredth of the cell's edge, not finer.
    edge_degrees = h3.average_hexagon_edge_length(resolution, unit="km") / 111.32
    assert 10.0**-digits >= edge_degrees / 1_000


def test_missing_points_stay_missing() -> None:
    lats, lons, cells = coarsen_points(
        pa.chunked_array([[None, 22.3, math.nan]], pa.float64()),
        pa.chunked_array([[114.1, None, 114.1]], pa.float64()),
        7,
    )
    assert lats.to_pylist() == lons.to_pylist() == cells.to_pylist() == [None, None, None]


@pytest.mark.parametrize("resolution", [0, 1, 2])
def test_no_point_of_a_cell_is_beyond_its_reach(resolution: int) -> None:
    cells = [c for base in h3.get_res0_cells() for c in h3.cell_to_children(base, resolution)]
    farthest = max(
        h3.great_circle_distance(h3.cell_to_latlng(c), vertex, unit="km")
        for c in cells
        for vertex in h3.cell_to_boundary(c)
    )
    assert farthest <= cell_reach_km(resolution)


@settings(max_examples=300, deadline=None)
@given(latitudes, longitudes, st.integers(min_value=0, max_value=12), st.data())
def test_a_widened_box_holds_every_point_whose_cell_centre_is_in_the_box(
    lat: float, lon: float, resolution: int, data: st.DataObject
) -> None:
    centre_lat, centre_lon, _cell = _one_point(lat, lon, resolution)
    # Any box holding the centre, down to the centre itself.
    west = data.draw(st.floats(min_value=-180, max_value=centre_lon))
    east = data.draw(st.floats(min_value=centre_lon, max_value=180))
    south = data.draw(st.floats(min_value=-90, max_value=centre_lat))
    north = data.draw(st.floats(min_value=centre_lat, max_value=90))
    coarsening = Transformation(
        TransformationKind.COARSEN_LOCATION, None, {"h3_resolution": resolution}
    )

    wide = widened(BoundingBox(west, south, east, north), coarsening)

    assert wide.min_lat <= lat <= wide.max_lat
    assert wide.min_lon <= lon <= wide.max_lon


def test_a_box_is_widened_by_the_reach_of_a_cell() -> None:
    coarsening = Transformation(TransformationKind.COARSEN_LOCATION, None, {"h3_resolution": 7})
    wide = widened(BoundingBox(114.0, 22.2, 114.1, 22.3), coarsening)
    margin = math.degrees(cell_reach_km(7) / EARTH_RADIUS_KM)
    assert wide.min_lat == pytest.approx(22.2 - margin)
    assert wide.max_lon - 114.1 == pytest.approx(
        margin / math.cos(math.radians(22.3 + margin)), 1e-3
    )


def test_a_geometry_becomes_the_centre_of_the_cell_of_a_point_on_it() -> None:
    road = shapely.LineString([(114.15, 22.28), (114.17, 22.29), (114.19, 22.28)])
    district = shapely.box(113.9, 22.2, 114.0, 22.3)
    column = pa.chunked_array([wkb_array([shapely.geometry.mapping(road), None,
                                          shapely.geometry.mapping(district)])])  # fmt: skip

    wkb, cells = coarsen_geometries(column, 6)

    points = geometries_of(wkb).tolist()
    assert points[1] is None
    assert cells[1].as_py() is None
    for geometry, index in ((road, 0), (district, 2)):
        point, cell = points[index], cells[index].as_py()
        assert isinstance(point, shapely.Point)
        assert h3.latlng_to_cell(point.y, point.x, 6) == cell
        anchor = shapely.point_on_surface(geometry)
        assert h3.latlng_to_cell(anchor.y, anchor.x, 6) == cell
        centre_lat, centre_lon = h3.cell_to_latlng(cell)
        digits = centre_decimals(6)
        assert (point.y, point.x) == (round(centre_lat, digits), round(centre_lon, digits))


def test_finer_cells_are_replaced_by_their_parent() -> None:
    fine = h3.latlng_to_cell(22.3, 114.17, 9)
    coarse = h3.latlng_to_cell(22.3, 114.17, 5)

    out = coarser_cells(pa.chunked_array([[fine, coarse, None, "not a cell"]]), 7)

    assert out.to_pylist() == [h3.cell_to_parent(fine, 7), coarse, None, None]
