"""GeoParquet and Shapefile sources: real files from the GeoParquet specification and pyogrio,
their declared CRS honoured (never guessed), features into the dataset's geometry field."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import shape

from connectors.crs import metres_between
from connectors.errors import PayloadError
from connectors.formats import ParseOptions, format_named, format_of
from connectors.geoparquet import parse_geoparquet
from connectors.payload import INVALID_KEY, ParsedPayload
from connectors.shapefile import parse_shapefile, shapefile_bundle
from domain.dataset import DatasetDefinition
from domain.record import RecordValidator
from domain.region import RegionRegistry
from tests.support.geo_payloads import NOW

FIXTURES = Path(__file__).parents[2] / "fixtures" / "geo"
EXAMPLE = (FIXTURES / "geoparquet-example-v1.1.0.parquet").read_bytes()
POLYGONS = (FIXTURES / "geoparquet-polygon-wkb-v1.1.0.parquet").read_bytes()
POINTS = (FIXTURES / "geoparquet-point-wkb-v1.1.0.parquet").read_bytes()
NOT_GEOPARQUET = (FIXTURES / "pyogrio-list-field-values.parquet").read_bytes()
NATURALEARTH = FIXTURES / "naturalearth_lowres" / "naturalearth_lowres.shp"


def countries(crs: str = "EPSG:4326", **columns: str) -> DatasetDefinition:
    fields = [
        {"name": "name", "type": "string"},
        {"name": "valid_from", "type": "timestamp"},
        {"name": "pop_est", "type": "float64"},
        {"name": "continent", "type": "string"},
        {"name": "iso_a3", "type": "string"},
        {"name": "gdp_md_est", "type": "float64"},
        {"name": "outline", "type": "geometry"},
        {"name": "repair", "type": "string"},
        *({"name": name, "type": kind} for name, kind in columns.items()),
    ]
    return DatasetDefinition.from_dict(
        {
            "id": "gba.geo.countries",
            "kind": "geospatial",
            "owner_region": "hk",
            "title": "Countries",
            "time_field": "valid_from",
            "key_fields": ["name"],
            "geometry": {"field": "outline", "crs": crs, "repair_field": "repair"},
            "fields": fields,
        }
    )


COUNTRIES = countries()
SAMPLES = countries(col="int64")


def _accepted(parsed: ParsedPayload, dataset: DatasetDefinition) -> list[list[object]]:
    rows = [{"valid_from": "2026-01-01T00:00:00Z", **row} for row in parsed.rows]
    batch = RecordValidator(dataset, RegionRegistry.default()).validate(rows, "hk", NOW)
    assert [r.message for r in batch.rejected] == []
    return batch.accepted


def test_the_geoparquet_specification_example_is_read_with_its_projjson_crs() -> None:
    parsed = parse_geoparquet(EXAMPLE, COUNTRIES)
    assert parsed.notes[:2] == (
        "coordinates read as EPSG:4326, as the source declares",
        "columns that are not properties were left out: ['bbox']",
    )
    names = [row["name"] for row in parsed.rows]
    assert names == ["Fiji", "Tanzania", "W. Sahara", "Canada", "United States of America"]
    source = pq.read_table(io.BytesIO(EXAMPLE))
    for row, wkb in zip(parsed.rows, source["geometry"].to_pylist(), strict=True):
        assert isinstance(row["outline"], dict)
        assert shape(row["outline"]).equals(shapely.from_wkb(wkb))
    assert len(_accepted(parsed, COUNTRIES)) == 5


def test_a_geoparquet_column_without_crs_is_wgs84_by_the_specification() -> None:
    parsed = parse_geoparquet(POLYGONS, countries(crs="EPSG:2326", col="int64"))
    assert parsed.notes[0] == (
        "coordinates read as EPSG:4326, as the source declares (the dataset's default is EPSG:2326)"
    )
    assert [row.get("outline") for row in parsed.rows][2:] == [None, None]  # empty, null
    with_hole = parsed.rows[1]["outline"]
    assert isinstance(with_hole, dict)
    assert shapely.get_num_interior_rings(shape(with_hole)) == 1


def test_a_geoparquet_crs_of_null_declares_nothing_so_the_dataset_crs_applies() -> None:
    table = pq.read_table(io.BytesIO(POINTS))
    geo = json.loads(table.schema.metadata[b"geo"])
    geo["columns"]["geometry"]["crs"] = None
    grid = Transformer.from_crs("EPSG:4326", "EPSG:2326", always_xy=True)
    x, y = grid.transform(114.152525, 22.248091)
    wkb = shapely.to_wkb(shapely.Point(x, y))
    table = pa.table({"col": [7], "geometry": [wkb]}).replace_schema_metadata(
        {b"geo": json.dumps(geo).encode()}
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    parsed = parse_geoparquet(sink.getvalue(), countries(crs="EPSG:2326", col="int64"))
    assert parsed.notes[0] == "coordinates read as EPSG:2326, the dataset's CRS"
    lon, lat = parsed.rows[0]["outline"]["coordinates"]  # type: ignore[index]
    assert metres_between(lon, lat, 114.152525, 22.248091) < 0.01


def test_an_empty_point_in_geoparquet_is_a_missing_geometry() -> None:
    parsed = parse_geoparquet(POINTS, SAMPLES)
    assert [row["outline"] for row in parsed.rows] == [
        {"type": "Point", "coordinates": [30.0, 10.0]},
        None,
        None,
        {"type": "Point", "coordinates": [40.0, 40.0]},
    ]
    assert "2 features have no geometry" in parsed.notes


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty-payload"),
        (b"PAR1 not really", "not-parquet"),
        (EXAMPLE[: len(EXAMPLE) // 2], "not-parquet"),
        (NOT_GEOPARQUET, "not-geoparquet"),
    ],
)
def test_an_unreadable_geoparquet_payload_raises_a_payload_error(data: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as raised:
        parse_geoparquet(data, COUNTRIES)
    assert raised.value.reason == reason


def _rewritten(change: dict[str, Any]) -> bytes:
    table = pq.read_table(io.BytesIO(EXAMPLE))
    geo = json.loads(table.schema.metadata[b"geo"])
    geo["columns"]["geometry"].update(change)
    sink = io.BytesIO()
    pq.write_table(table.replace_schema_metadata({b"geo": json.dumps(geo).encode()}), sink)
    return sink.getvalue()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"encoding": "point"}, "unsupported-encoding"),
        ({"crs": {"type": "nonsense"}}, "unknown-crs"),
        ({"crs": 5}, "unknown-crs"),
        ({"crs": CRS("+proj=tmerc +lat_0=1 +lon_0=2").to_json_dict()}, "unknown-crs"),
    ],
)
def test_geoparquet_metadata_the_parser_cannot_honour_is_refused(
    change: dict[str, Any], reason: str
) -> None:
    with pytest.raises(PayloadError) as raised:
        parse_geoparquet(_rewritten(change), COUNTRIES)
    assert raised.value.reason == reason


def test_a_geoparquet_crs_in_hk1980_is_transformed() -> None:
    parsed = parse_geoparquet(
        _rewritten({"crs": CRS("EPSG:2326").to_json_dict()}), countries(crs="EPSG:4326")
    )
    assert parsed.notes[0].startswith("coordinates read as EPSG:2326, as the source declares")
    # Country outlines in degrees are not Hong Kong Grid metres: each lies outside its area.
    assert all("outside the area of use of EPSG:2326" in str(r[INVALID_KEY]) for r in parsed.rows)


def test_the_natural_earth_shapefile_is_read_with_its_prj() -> None:
    parsed = parse_shapefile(shapefile_bundle(NATURALEARTH), COUNTRIES)
    assert parsed.notes[0] == "coordinates read as EPSG:4326, as the source declares"
    assert len(parsed.rows) == 177
    invalid = [row for row in parsed.rows if INVALID_KEY in row]
    assert invalid == []
    # Russia's outline reaches 180.00000000000006: a rounding error, moved onto the edge.
    assert (
        "1 geometries were a rounding error past their CRS's area; moved onto its edge"
        in parsed.notes
    )
    by_name = {row["name"]: row for row in parsed.rows}
    assert by_name["China"]["iso_a3"] == "CHN"
    assert shape(by_name["China"]["outline"]).contains(shapely.Point(116.4, 39.9))  # type: ignore[arg-type]
    assert len(_accepted(parsed, COUNTRIES)) == 177


def test_a_shapefile_without_prj_takes_the_dataset_crs_and_with_crs_option_the_override() -> None:
    bundle = io.BytesIO()
    with zipfile.ZipFile(bundle, "w") as out:
        for suffix in (".shp", ".shx", ".dbf", ".cpg"):
            part = NATURALEARTH.with_suffix(suffix)
            out.write(part, part.name)
    data = bundle.getvalue()
    parsed = parse_shapefile(data, countries(crs="EPSG:2326"))
    assert parsed.notes[0] == "coordinates read as EPSG:2326, the dataset's CRS"
    assert all(INVALID_KEY in row for row in parsed.rows)  # degrees are not HK Grid metres
    overridden = parse_shapefile(data, countries(crs="EPSG:2326"), crs="EPSG:4326")
    assert not any(INVALID_KEY in row for row in overridden.rows)


def _zip(**members: bytes) -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w") as out:
        for name, content in members.items():
            out.writestr(name.replace("_", "."), content)
    return sink.getvalue()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty-payload"),
        (NATURALEARTH.read_bytes(), "not-shapefile"),  # a bare .shp: no attributes, no CRS
        (_zip(a_txt=b"hello"), "not-shapefile"),
        (_zip(a_shp=b"x", a_shx=b"x"), "not-shapefile"),
        (_zip(a_shp=b"x" * 100, a_shx=b"x", a_dbf=b"x"), "not-shapefile"),
        (_zip(a_shp=b"\x00\x00\x27\x0a" + b"\x00" * 96, a_shx=b"x", a_dbf=b"x"), "not-shapefile"),
        (shapefile_bundle(NATURALEARTH)[:-200], "not-shapefile"),
    ],
)
def test_an_unreadable_shapefile_payload_raises_a_payload_error(data: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as raised:
        parse_shapefile(data, COUNTRIES)
    assert raised.value.reason == reason


def test_formats_are_named_and_found_by_file_name() -> None:
    assert format_of("parcels.geoparquet").name == "geoparquet"
    assert format_of("parcels.geo.parquet").name == "geoparquet"
    assert format_of("districts.shp.zip").name == "shapefile"
    assert format_of("districts.shp").name == "shapefile"
    with pytest.raises(PayloadError, match=r"zip it with its \.shx, \.dbf and \.prj"):
        parse_shapefile(NATURALEARTH.read_bytes(), COUNTRIES)
    parsed = format_named("geoparquet").parse(EXAMPLE, COUNTRIES, ParseOptions())
    assert parsed.format == "geoparquet"
    parsed = format_named("shapefile").parse(
        shapefile_bundle(NATURALEARTH), COUNTRIES, ParseOptions(crs="EPSG:4326")
    )
    assert parsed.format == "shapefile"
