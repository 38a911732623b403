"""CRS names and their way to WGS-84: the published Hong Kong anchor, Macao Grid and GCJ-02."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from connectors.crs import (
    GCJ02,
    GCJ02_ROUND_TRIP_METRES,
    CrsError,
    ProjNormaliser,
    crs_name,
    metres_between,
    transform_for,
    wgs84_to_gcj02,
)
from domain.dataset import DatasetDefinition
from domain.record import RecordValidator
from domain.region import RegionRegistry
from domain.rejection import RejectionReason
from storage.catalog import Catalog
from storage.ingestion import IngestLedger
from streams.processor import IngestProcessor

NOW = datetime(2026, 11, 27, tzinfo=UTC)
# A Hong Kong Transport Department detector location, published in both forms.
HK1980_ANCHOR = (833_758.0, 812_147.0)
WGS84_ANCHOR = (114.152525, 22.248091)
# Macao Grid → WGS-84 includes a Helmert step whose reverse is approximate: round trips over
# the grid's area of use measured at most 3.4 mm (a grid of 60 by 60 points).
MACAO_GRID_ROUND_TRIP_METRES = 0.01


def test_hong_kong_1980_grid_anchor_lands_within_a_metre_of_its_published_wgs84() -> None:
    lons, lats = transform_for("EPSG:2326").to_wgs84([HK1980_ANCHOR[0]], [HK1980_ANCHOR[1]])
    assert metres_between(float(lons[0]), float(lats[0]), *WGS84_ANCHOR) < 1.0


def test_the_published_wgs84_anchor_lands_within_a_metre_of_its_hk1980_grid_position() -> None:
    # The other direction, as a partner holding WGS-84 would compute it.
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:2326", always_xy=True).transform(*WGS84_ANCHOR)
    assert ((x - HK1980_ANCHOR[0]) ** 2 + (y - HK1980_ANCHOR[1]) ** 2) ** 0.5 < 1.0


def test_hong_kong_grid_is_read_easting_first_although_epsg_puts_northing_first() -> None:
    lons, lats = transform_for("EPSG:2326").to_wgs84([HK1980_ANCHOR[0]], [HK1980_ANCHOR[1]])
    assert 114 < lons[0] < 115
    assert 22 < lats[0] < 23


def test_area_of_use_is_in_the_crs_own_units() -> None:
    min_x, min_y, max_x, max_y = transform_for("EPSG:2326").bounds
    assert min_x < HK1980_ANCHOR[0] < max_x
    assert min_y < HK1980_ANCHOR[1] < max_y
    assert transform_for("EPSG:4490").bounds == pytest.approx((73.62, 16.7, 134.77, 53.56))


@settings(max_examples=300, deadline=None)
@given(lon=st.floats(113.53, 113.67), lat=st.floats(22.07, 22.22))
def test_macao_grid_round_trip(lon: float, lat: float) -> None:
    to_grid = Transformer.from_crs("EPSG:4326", "EPSG:8433", always_xy=True)
    x, y = to_grid.transform(lon, lat)
    lons, lats = transform_for("EPSG:8433").to_wgs84([x], [y])
    assert metres_between(lon, lat, float(lons[0]), float(lats[0])) < MACAO_GRID_ROUND_TRIP_METRES


@settings(max_examples=1000, deadline=None)
@given(lon=st.floats(73.0, 135.0), lat=st.floats(18.0, 53.0))
def test_gcj02_round_trip(lon: float, lat: float) -> None:
    gx, gy = wgs84_to_gcj02(lon, lat)
    lons, lats = transform_for(GCJ02).to_wgs84([gx], [gy])
    assert metres_between(lon, lat, float(lons[0]), float(lats[0])) < GCJ02_ROUND_TRIP_METRES


def test_declared_gcj02_is_offset_in_hong_kong_too_never_guessed_from_position() -> None:
    gx, gy = wgs84_to_gcj02(*WGS84_ANCHOR)
    # The mainland offset is hundreds of metres: a source that says GCJ-02 gets it removed.
    assert metres_between(gx, gy, *WGS84_ANCHOR) > 300
    lons, lats = transform_for(GCJ02).to_wgs84([gx], [gy])
    assert metres_between(float(lons[0]), float(lats[0]), *WGS84_ANCHOR) < 0.001


@settings(max_examples=300, deadline=None)
@given(lon=st.floats(113.8, 114.5), lat=st.floats(22.15, 22.55))
def test_hong_kong_grid_round_trip(lon: float, lat: float) -> None:
    to_grid = Transformer.from_crs("EPSG:4326", "EPSG:2326", always_xy=True)
    x, y = to_grid.transform(lon, lat)
    lons, lats = transform_for("EPSG:2326").to_wgs84([x], [y])
    assert metres_between(lon, lat, float(lons[0]), float(lats[0])) < 0.001


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("EPSG:2326", "EPSG:2326"),
        (" epsg:8433 ", "EPSG:8433"),
        ("EPSG:04326", "EPSG:4326"),
        ("EPSG:4490", "EPSG:4490"),
        ("GCJ-02", GCJ02),
        ("gcj02", GCJ02),
    ],
)
def test_crs_names_are_made_canonical(text: str, expected: str) -> None:
    assert crs_name(text) == expected


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("WGS84", "not a CRS name"),
        ("", "not a CRS name"),
        ("EPSG:", "not a CRS name"),
        ("urn:ogc:def:crs:EPSG::2326", "not a CRS name"),
        ("EPSG:99999", "not in PROJ's EPSG database"),
        ("EPSG:4978", "not a two-dimensional"),  # geocentric
        ("EPSG:4979", "not a two-dimensional"),  # WGS 84 with ellipsoidal height
        ("BD-09", "not a CRS name"),
    ],
)
def test_other_crs_names_are_refused_saying_why(text: str, complaint: str) -> None:
    with pytest.raises(CrsError, match=complaint):
        crs_name(text)


def test_transforms_are_cached_per_crs() -> None:
    assert transform_for("EPSG:2326") is transform_for("EPSG:2326")


def _hk1980_positions() -> DatasetDefinition:
    return DatasetDefinition.from_dict(
        {
            "id": "hk.traffic.detector-positions",
            "kind": "traffic",
            "owner_region": "hk",
            "title": "Detector positions",
            "time_field": "observed_at",
            "key_fields": ["detector_id", "observed_at"],
            "geometry": {"lat": "northing", "lon": "easting", "crs": "EPSG:2326"},
            "fields": [
                {"name": "detector_id", "type": "string"},
                {"name": "observed_at", "type": "timestamp"},
                {"name": "northing", "type": "float64"},
                {"name": "easting", "type": "float64"},
            ],
        }
    )


def test_the_worker_normalises_a_point_dataset_declared_in_hong_kong_grid() -> None:
    validator = RecordValidator(_hk1980_positions(), RegionRegistry.default(), ProjNormaliser())
    now = datetime(2026, 11, 27, tzinfo=UTC)
    rows = [
        {
            "detector_id": "AID01101",
            "observed_at": "2026-11-26T08:00:00+08:00",
            "easting": HK1980_ANCHOR[0],
            "northing": HK1980_ANCHOR[1],
        },
        {
            "detector_id": "far-away",
            "observed_at": "2026-11-26T08:00:00+08:00",
            "easting": 100.0,
            "northing": 100.0,
        },
    ]
    batch = validator.validate(rows, "hk", now)
    (record,) = batch.accepted
    lon, lat = record[-1], record[-2]
    assert isinstance(lon, float)
    assert isinstance(lat, float)
    assert metres_between(lon, lat, *WGS84_ANCHOR) < 1.0
    (rejection,) = batch.rejected
    assert rejection.reason is RejectionReason.COORDINATES_OUT_OF_AREA


def test_the_ingest_processor_normalises_every_declared_crs_by_default() -> None:
    processor = IngestProcessor(cast(IngestLedger, None), cast(Catalog, None))
    assert isinstance(processor.normaliser, ProjNormaliser)


def test_the_normaliser_refuses_an_unknown_crs_as_the_domain_expects() -> None:
    with pytest.raises(ValueError, match="EPSG:99999"):
        ProjNormaliser().bounds("EPSG:99999")


@pytest.mark.parametrize("crs", ["GCJ-02", "EPSG:8433", "EPSG:4490"])
def test_the_worker_normalises_point_datasets_in_every_regional_crs(crs: str) -> None:
    lon, lat = 113.5439, 22.1987  # Senado Square, Macao
    if crs == "GCJ-02":
        x, y = wgs84_to_gcj02(lon, lat)
    else:
        x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    document = _hk1980_positions().as_dict()
    document["geometry"]["crs"] = crs
    dataset = DatasetDefinition.from_dict(document)
    row = {"detector_id": "m1", "observed_at": "2026-11-26T08:00:00+08:00"}
    validator = RecordValidator(dataset, RegionRegistry.default(), ProjNormaliser())
    (record,) = validator.validate([{**row, "easting": x, "northing": y}], "mo", NOW).accepted
    got_lon, got_lat = record[-1], record[-2]
    assert isinstance(got_lon, float)
    assert isinstance(got_lat, float)
    # CGCS2000 and WGS-84 differ by centimetres; PROJ treats them as the same here.
    assert metres_between(got_lon, got_lat, lon, lat) < 0.01
