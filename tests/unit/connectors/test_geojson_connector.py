"""GeoJSON FeatureCollections become rows: declared CRS to WGS-84, repaired, or rejected."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h3
import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from connectors import datasets
from connectors.crs import metres_between, wgs84_to_gcj02
from connectors.errors import PayloadError
from connectors.formats import ParseOptions, format_named, format_of
from connectors.geojson import geojson_crs_name, parse_feature_collection
from connectors.payload import INVALID_KEY, ParsedPayload
from domain.record import RecordValidator
from domain.region import RegionRegistry

FIXTURES = Path(__file__).parents[2] / "fixtures" / "geo"
DISTRICT = json.loads((FIXTURES / "hk-central-western.geojson").read_text(encoding="utf-8"))
DISTRICTS = datasets.load(datasets.HK_DISTRICT_BOUNDARIES)
DETECTORS = datasets.load(datasets.HK_TRAFFIC_DETECTORS)
NOW = datetime(2026, 11, 27, tzinfo=UTC)
HK1980_ANCHOR = (833_758.0, 812_147.0)
WGS84_ANCHOR = (114.152525, 22.248091)
# A ring that encloses nothing: repairing it leaves no polygon.
COLLAPSED = [[114, 22], [114.1, 22.1], [114, 22], [114, 22]]


def _collection(*features: dict[str, Any], crs: str | None = None) -> bytes:
    document: dict[str, Any] = {"type": "FeatureCollection", "features": list(features)}
    if crs is not None:
        document["crs"] = {"type": "name", "properties": {"name": crs}}
    return json.dumps(document, ensure_ascii=False).encode()


def _district(**properties: Any) -> dict[str, Any]:
    feature = json.loads(json.dumps(DISTRICT["features"][0]))
    feature["properties"].update(valid_from="2026-01-01T00:00:00+08:00", **properties)
    return dict(feature)


def _point(x: float, y: float, **properties: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": properties.pop("id", "AID01101"),
        "geometry": {"type": "Point", "coordinates": [x, y]},
        "properties": {"valid_from": "2026-01-01T00:00:00Z", **properties},
    }


def _in_metres(geometry: BaseGeometry) -> BaseGeometry:
    to_grid = Transformer.from_crs("EPSG:4326", "EPSG:2326", always_xy=True)
    return shapely.transform(geometry, lambda xy: _stack(*to_grid.transform(xy[:, 0], xy[:, 1])))


def _stack(xs: Any, ys: Any) -> Any:
    return np.column_stack([xs, ys])


def _shape(value: object) -> BaseGeometry:
    assert isinstance(value, dict)
    return shape(value)


def _accepted(parsed: ParsedPayload, dataset: Any = DISTRICTS) -> list[list[object]]:
    batch = RecordValidator(dataset, RegionRegistry.default()).validate(parsed.rows, "hk", NOW)
    assert batch.rejected == []
    return batch.accepted


def test_a_real_district_in_wgs84_is_read_repaired_and_accepted() -> None:
    parsed = parse_feature_collection(_collection(_district()), DISTRICTS, crs="EPSG:4326")
    (row,) = parsed.rows
    assert row["dc_code"] == "A"
    assert row["dc_chin"] == "中西區"
    # The published polygon crosses itself at 114.167 22.276; make_valid repairs it.
    assert row["geometry_repair"] == (
        "make_valid: Self-intersection[114.167 22.276]; MultiPolygon became MultiPolygon"
    )
    assert "1 invalid geometries were repaired with make_valid" in parsed.notes
    boundary = _shape(row["boundary"])
    assert boundary.is_valid
    original = shape(DISTRICT["features"][0]["geometry"])
    repaired = shapely.make_valid(original, method="structure", keep_collapsed=False)
    assert boundary.symmetric_difference(repaired).area < 1e-12
    (record,) = _accepted(parsed)
    assert record[2 + DISTRICTS.field_names.index("boundary")] == row["boundary"]


def test_a_district_declared_gcj02_lands_within_ten_metres_of_its_wgs84_original() -> None:
    wgs84 = _district()
    gcj02 = _district()
    gcj02["geometry"]["coordinates"] = [
        [[list(wgs84_to_gcj02(x, y)) for x, y in ring] for ring in polygon]
        for polygon in wgs84["geometry"]["coordinates"]
    ]
    offset = shapely.hausdorff_distance(
        _in_metres(shape(gcj02["geometry"])), _in_metres(shape(wgs84["geometry"]))
    )
    assert offset > 300  # the GCJ-02 file is visibly off before conversion
    from_gcj02 = parse_feature_collection(_collection(gcj02, crs="GCJ-02"), DISTRICTS)
    from_wgs84 = parse_feature_collection(_collection(wgs84), DISTRICTS, crs="EPSG:4326")
    assert "coordinates read as GCJ-02, as the source declares" in from_gcj02.notes[0]
    landed = _in_metres(_shape(from_gcj02.rows[0]["boundary"]))
    original = _in_metres(_shape(from_wgs84.rows[0]["boundary"]))
    assert shapely.hausdorff_distance(landed, original) < 10


def test_wgs84_coordinates_are_not_guessed_into_a_dataset_declared_in_hk1980() -> None:
    parsed = parse_feature_collection(_collection(_district()), DISTRICTS)
    (row,) = parsed.rows
    assert "outside the area of use of EPSG:2326" in str(row[INVALID_KEY])
    assert parsed.notes[0] == "coordinates read as EPSG:2326, the dataset's CRS"


@pytest.mark.parametrize(
    "name", ["urn:ogc:def:crs:EPSG::2326", "EPSG:2326", "urn:ogc:def:crs:EPSG:6.3:2326"]
)
def test_a_hk1980_point_lands_within_a_metre_and_gets_its_h3_cell(name: str) -> None:
    parsed = parse_feature_collection(_collection(_point(*HK1980_ANCHOR), crs=name), DETECTORS)
    (row,) = parsed.rows
    lon, lat = row["location"]["coordinates"]  # type: ignore[index]
    assert metres_between(lon, lat, *WGS84_ANCHOR) < 1.0
    assert row["h3_cell"] == h3.latlng_to_cell(lat, lon, 9)
    assert h3.get_resolution(str(row["h3_cell"])) == 9
    assert row["detector_id"] == "AID01101"
    (record,) = _accepted(parsed, DETECTORS)
    assert record[2] == "AID01101"


def test_the_crs_option_overrides_what_the_source_declares() -> None:
    data = _collection(_point(*WGS84_ANCHOR), crs="EPSG:2326")
    parsed = parse_feature_collection(data, DETECTORS, crs="EPSG:4326")
    assert parsed.notes[:2] == (
        "coordinates read as EPSG:4326, as the --crs option says",
        "the source declares EPSG:2326; --crs overrides it",
    )
    assert parsed.rows[0]["location"] == {"type": "Point", "coordinates": list(WGS84_ANCHOR)}


def test_crs84_is_longitude_latitude_on_wgs84() -> None:
    assert geojson_crs_name("urn:ogc:def:crs:OGC:1.3:CRS84") == "EPSG:4326"


def test_text_keeps_its_script_traditional_simplified_and_hkscs() -> None:
    # U+E88C is how HKSCS-era files encode 埗 (Sham Shui Po); it is kept, not "corrected".
    names = {"dc_chin": "深水\ue88c", "dc_chin_hans": "深水埗", "dc_eng": "Sham Shui Po"}
    parsed = parse_feature_collection(_collection(_district(**names)), DISTRICTS, "EPSG:4326")
    row = parsed.rows[0]
    assert (row["dc_chin"], row["dc_chin_hans"]) == ("深水\ue88c", "深水埗")


def _bad(feature: object, dataset: Any = DETECTORS, crs: str = "EPSG:4326") -> str:
    document = {"type": "FeatureCollection", "features": [feature]}
    parsed = parse_feature_collection(json.dumps(document).encode(), dataset, crs)
    (row,) = parsed.rows
    assert "1 features could not be read and are passed on as invalid" in parsed.notes
    return str(row[INVALID_KEY])


def _with_geometry(geometry: object) -> dict[str, Any]:
    return {**_point(114.1, 22.3), "geometry": geometry}


@pytest.mark.parametrize(
    ("feature", "words"),
    [
        ([1, 2], "not a GeoJSON Feature"),
        ({"type": "Point", "coordinates": [1, 2]}, "not a GeoJSON Feature"),
        ({**_point(114.1, 22.3), "properties": [1]}, "properties must be an object"),
        ({**_point(114.1, 22.3), "id": [1]}, "feature id must be"),
        (_with_geometry({"type": "GeometryCollection", "geometries": []}), "GeometryCollection"),
        (_with_geometry({"type": "Point", "coordinates": [[1, 2]]}), "cannot be read"),
        (_with_geometry({"type": "Point", "coordinates": "x"}), "cannot be read"),
        (_with_geometry({"type": "Blob", "coordinates": [1, 2]}), "cannot be read"),
        (_with_geometry({"type": "Point", "coordinates": [1, 2], "crs": 1}), "not one shape"),
        (_with_geometry([114, 22]), "must be an object"),
        (_with_geometry({"type": "Point", "coordinates": [200, 22]}), "outside the area"),
        (_with_geometry({"type": "Point", "coordinates": [float("nan"), 22]}), "not finite"),
        (_with_geometry({"type": "Point", "coordinates": [1e309, 22]}), "not finite"),
        (
            _with_geometry(
                {
                    "type": "Polygon",
                    "coordinates": [[[114, 22], [114.1, 22.1], [114, 22], [114, 22]]],
                }
            ),
            "repairing it left nothing",
        ),
        ({**_point(114.1, 22.3, h3_cell="x")}, "clash"),
    ],
)
def test_a_bad_feature_becomes_one_invalid_row_saying_why(feature: object, words: str) -> None:
    assert words in _bad(feature)


def test_z_coordinates_are_dropped_and_said_so() -> None:
    data = _collection(
        {**_point(114.1, 22.3), "geometry": {"type": "Point", "coordinates": [114.1, 22.3, 5]}}
    )
    parsed = parse_feature_collection(data, DETECTORS, "EPSG:4326")
    assert parsed.rows[0]["location"] == {"type": "Point", "coordinates": [114.1, 22.3]}
    assert "1 geometries lost their z coordinates" in parsed.notes


def test_unknown_properties_are_kept_for_the_worker_to_reject_by_name() -> None:
    parsed = parse_feature_collection(
        _collection(_point(114.1, 22.3, colour="red")), DETECTORS, "EPSG:4326"
    )
    assert parsed.rows[0]["colour"] == "red"
    assert "properties not in 'hk.geo.traffic-detectors' were kept: ['colour']" in parsed.notes
    batch = RecordValidator(DETECTORS, RegionRegistry.default()).validate(parsed.rows, "hk", NOW)
    assert [r.reason.value for r in batch.rejected] == ["unknown-field"]


def test_a_feature_without_geometry_is_kept_with_a_null_geometry() -> None:
    parsed = parse_feature_collection(
        _collection({**_point(114.1, 22.3), "geometry": None}), DETECTORS
    )
    assert parsed.rows[0]["location"] is None
    assert "1 features have no geometry" in parsed.notes


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty-payload"),
        (b"\xff\xfe{}", "bad-encoding"),
        (b"{not json", "not-json"),
        (b"[" * 100_000, "not-json"),
        (b"[]", "not-geojson"),
        (b'{"type": "Topology"}', "not-geojson"),
        (b'{"type": "FeatureCollection", "features": {}}', "not-geojson"),
        (b'{"type": "FeatureCollection", "features": [], "crs": {"type": "link"}}', "unknown-crs"),
        (_collection(crs="EPSG:99999"), "unknown-crs"),
        (_collection(crs="urn:ogc:def:crs:EPSG::4978"), "unknown-crs"),
    ],
)
def test_an_unreadable_payload_raises_a_payload_error(data: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as raised:
        parse_feature_collection(data, DETECTORS)
    assert raised.value.reason == reason


def test_a_bad_crs_option_and_a_dataset_without_geometry_field_are_payload_errors() -> None:
    with pytest.raises(PayloadError, match="--crs: 'HK80'"):
        parse_feature_collection(_collection(), DETECTORS, crs="HK80")
    with pytest.raises(PayloadError) as raised:
        parse_feature_collection(_collection(), datasets.load(datasets.GTFS_RT_VEHICLE_POSITIONS))
    assert raised.value.reason == "no-geometry-field"


def test_the_format_is_chosen_by_name_or_by_file_name() -> None:
    assert format_of("districts.geojson").name == "geojson"
    assert format_of("https://example.org/d.geo.json?x=1").name == "geojson"
    parsed = format_named("geojson").parse(
        _collection(_point(*HK1980_ANCHOR)), DETECTORS, ParseOptions(crs=None)
    )
    assert parsed.format == "geojson"
    assert parsed.rows[0]["h3_cell"] is not None
