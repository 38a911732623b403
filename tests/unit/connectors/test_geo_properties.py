"""Every geo parser, fed mutated real files, random bytes and generated features: it never
crashes (only PayloadError), never hangs, and every bad feature is rejected with a reason."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import CRS
from shapely.geometry import shape

from connectors import datasets
from connectors.geojson import parse_feature_collection
from connectors.geoparquet import parse_geoparquet
from connectors.shapefile import parse_shapefile, shapefile_bundle
from domain.dataset import DatasetDefinition
from tests.support.geo_payloads import (
    check_rows_rejected_with_reasons,
    crs_names,
    features,
    junk,
    mutated,
    nested,
    parsed_or_error,
    plausible_features,
    plausible_geometries,
    spoilt,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "geo"
DISTRICT = json.loads((FIXTURES / "hk-central-western.geojson").read_text(encoding="utf-8"))
DISTRICT["features"][0]["properties"]["valid_from"] = "2026-01-01T00:00:00+08:00"
DISTRICT_BYTES = json.dumps(DISTRICT, ensure_ascii=False).encode()
DISTRICTS = datasets.load(datasets.HK_DISTRICT_BOUNDARIES)
DETECTORS = datasets.load(datasets.HK_TRAFFIC_DETECTORS)
GEOPARQUET_EXAMPLE = (FIXTURES / "geoparquet-example-v1.1.0.parquet").read_bytes()
NATURALEARTH = FIXTURES / "naturalearth_lowres" / "naturalearth_lowres.shp"
NATURALEARTH_ZIP = shapefile_bundle(NATURALEARTH)
NATURALEARTH_PARTS = {
    part.name: part.read_bytes() for part in sorted(NATURALEARTH.parent.iterdir())
}
# Any geometry, any properties a Natural Earth or GeoParquet sample file carries.
SHAPES = DatasetDefinition.from_dict(
    {
        "id": "gba.geo.shapes",
        "kind": "geospatial",
        "owner_region": "hk",
        "title": "Shapes",
        "time_field": "valid_from",
        "key_fields": ["name"],
        "geometry": {"field": "shape", "crs": "EPSG:4326", "repair_field": "repair"},
        "fields": [
            {"name": "name", "type": "string"},
            {"name": "valid_from", "type": "timestamp"},
            {"name": "pop_est", "type": "float64"},
            {"name": "continent", "type": "string"},
            {"name": "iso_a3", "type": "string"},
            {"name": "gdp_md_est", "type": "float64"},
            {"name": "shape", "type": "geometry"},
            {"name": "repair", "type": "string"},
        ],
    }
)
EXAMPLES = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
pytestmark = [
    pytest.mark.timeout(600),
    # Falsifying examples built from whole real files are long; their repr is no help.
    pytest.mark.filterwarnings("ignore:Generating overly large repr"),
]


def _parse_geojson(
    data: bytes, crs: str | None, district: bool, features: int | None = None
) -> None:
    dataset = DISTRICTS if district else DETECTORS
    parsed = parsed_or_error(lambda: parse_feature_collection(data, dataset, crs))
    if parsed is None:
        return
    if features is not None:
        assert len(parsed.rows) == features  # one row per feature: none dropped
    check_rows_rejected_with_reasons(parsed, dataset)


@EXAMPLES
@given(
    collection=st.fixed_dictionaries(
        {
            "type": st.sampled_from(["FeatureCollection", "FeatureCollection", "Feature"]),
            "features": st.lists(
                st.one_of(
                    features(list(DETECTORS.field_names)),
                    plausible_features(list(DISTRICTS.field_names)),
                    plausible_features(["valid_from", "road_en", "road_tc"]),
                ),
                max_size=6,
            ),
        },
        optional={
            "crs": st.one_of(
                crs_names.map(lambda name: {"type": "name", "properties": {"name": name}}),
                st.none(),
                st.integers(),
            )
        },
    ),
    crs=crs_names,
    district=st.booleans(),
)
def test_generated_feature_collections(
    collection: dict[str, Any], crs: str | None, district: bool
) -> None:
    count = len(collection["features"]) if collection["type"] == "FeatureCollection" else 1
    _parse_geojson(json.dumps(collection).encode(), crs, district, count)


@EXAMPLES
@given(
    collection=st.fixed_dictionaries(
        {
            "type": st.just("FeatureCollection"),
            "features": st.lists(plausible_features(list(DETECTORS.field_names)), max_size=5),
        }
    ),
    crs=st.sampled_from(["EPSG:4326", "GCJ-02", "EPSG:4490"]),
)
def test_plausible_points_lines_and_polygons(collection: dict[str, list[object]], crs: str) -> None:
    _parse_geojson(json.dumps(collection).encode(), crs, False, len(collection["features"]))


@EXAMPLES
@given(data=mutated(DISTRICT_BYTES), crs=crs_names)
def test_mutated_real_district_file(data: bytes, crs: str | None) -> None:
    _parse_geojson(data, crs, district=True)


@EXAMPLES
@given(
    coordinates=spoilt(DISTRICT["features"][0]["geometry"]["coordinates"]),
    crs=st.sampled_from(["EPSG:4326", "GCJ-02", None]),
)
def test_real_district_with_spoilt_coordinates(coordinates: object, crs: str | None) -> None:
    document = json.loads(DISTRICT_BYTES)
    document["features"][0]["geometry"]["coordinates"] = coordinates
    _parse_geojson(json.dumps(document).encode(), crs, district=True)


@EXAMPLES
@given(data=st.binary(max_size=300), crs=crs_names)
def test_random_bytes_as_geojson(data: bytes, crs: str | None) -> None:
    _parse_geojson(data, crs, district=False)


# GeoParquet ------------------------------------------------------------------------------


def _parse_geoparquet(data: bytes, crs: str | None, rows: int | None = None) -> None:
    parsed = parsed_or_error(lambda: parse_geoparquet(data, SHAPES, crs))
    if parsed is None:
        return
    if rows is not None:
        assert len(parsed.rows) == rows
    check_rows_rejected_with_reasons(parsed, SHAPES)


@st.composite
def wkb_values(draw: st.DrawFn) -> bytes | None:
    geometry = draw(plausible_geometries())
    try:
        wkb: bytes | None = shapely.to_wkb(shape(geometry))
    except Exception:  # a spoilt geometry shapely cannot build: send junk bytes instead
        wkb = draw(st.binary(max_size=40))
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return None
    if choice == 1 and wkb:
        return wkb[: draw(st.integers(0, len(wkb) - 1))]  # truncated
    if choice == 2:
        return draw(st.binary(max_size=60))
    return wkb


_geo_columns = st.fixed_dictionaries(
    {"encoding": st.sampled_from(["WKB", "wkb", "point", 7])},
    optional={
        "crs": st.one_of(
            st.none(),
            st.sampled_from(
                [
                    CRS("EPSG:4326").to_json_dict(),
                    CRS("EPSG:4490").to_json_dict(),
                    CRS("EPSG:2326").to_json_dict(),
                    "OGC:CRS84",
                    "EPSG:4326",
                ]
            ),
            junk,
        ),
        "edges": st.sampled_from(["planar", "spherical"]),
        "covering": st.one_of(junk, st.just({"bbox": {"xmin": ["bbox", "xmin"]}})),
    },
)


@st.composite
def geoparquet_files(draw: st.DrawFn) -> tuple[bytes, int]:
    count = draw(st.integers(0, 6))
    wkb = draw(st.lists(wkb_values(), min_size=count, max_size=count))
    columns: dict[str, pa.Array] = {
        "geometry": pa.array(wkb, type=pa.binary()),
        "name": pa.array(draw(st.lists(st.text(max_size=5), min_size=count, max_size=count))),
    }
    if draw(st.booleans()):
        columns["valid_from"] = pa.array(
            draw(st.lists(st.datetimes(timezones=st.just(UTC)), min_size=count, max_size=count)),
            type=pa.timestamp("us", tz="UTC"),
        )
    if draw(st.booleans()):
        columns["bbox"] = pa.array([{"xmin": 1.0}] * count)
    geo: object = {
        "version": draw(st.sampled_from(["1.0.0", "1.1.0", "0.4.0"])),
        "primary_column": draw(st.sampled_from(["geometry", "geometry", "name", "missing"])),
        "columns": {"geometry": draw(_geo_columns)},
    }
    if draw(st.integers(0, 9)) == 0:
        geo = draw(nested)
    table = pa.table(columns).replace_schema_metadata({b"geo": json.dumps(geo).encode()})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue(), count


@EXAMPLES
@given(file=geoparquet_files(), crs=st.sampled_from([None, None, "EPSG:4326", "GCJ-02"]))
def test_generated_geoparquet_files(file: tuple[bytes, int], crs: str | None) -> None:
    data, count = file
    _parse_geoparquet(data, crs, count)


@EXAMPLES
@given(data=mutated(GEOPARQUET_EXAMPLE), crs=crs_names)
def test_mutated_geoparquet_specification_example(data: bytes, crs: str | None) -> None:
    _parse_geoparquet(data, crs)


@EXAMPLES
@given(
    data=st.one_of(
        st.binary(max_size=300), st.binary(max_size=200).map(lambda b: b"PAR1" + b + b"PAR1")
    )
)
def test_random_bytes_as_geoparquet(data: bytes) -> None:
    _parse_geoparquet(data, None)


# Shapefile -------------------------------------------------------------------------------


def _parse_shapefile(data: bytes, crs: str | None) -> None:
    parsed = parsed_or_error(lambda: parse_shapefile(data, SHAPES, crs))
    if parsed is None:
        return
    check_rows_rejected_with_reasons(parsed, SHAPES)


def _bundle(parts: dict[str, bytes]) -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w") as out:
        for name, content in parts.items():
            out.writestr(name, content)
    return sink.getvalue()


@st.composite
def damaged_shapefiles(draw: st.DrawFn) -> bytes:
    """The Natural Earth shapefile with one or two of its parts damaged, zipped intact."""
    parts = dict(NATURALEARTH_PARTS)
    for name in draw(st.lists(st.sampled_from(sorted(parts)), min_size=1, max_size=2)):
        parts[name] = draw(mutated(parts[name]))
    if draw(st.integers(0, 4)) == 0:
        del parts[draw(st.sampled_from(sorted(parts)))]
    return _bundle(parts)


@EXAMPLES
@given(data=damaged_shapefiles(), crs=st.sampled_from([None, "EPSG:4326", "EPSG:2326"]))
def test_damaged_natural_earth_shapefile(data: bytes, crs: str | None) -> None:
    _parse_shapefile(data, crs)


@EXAMPLES
@given(data=mutated(NATURALEARTH_ZIP))
def test_mutated_natural_earth_zip(data: bytes) -> None:
    _parse_shapefile(data, None)


@EXAMPLES
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.dictionaries(
            st.sampled_from(["a.shp", "a.shx", "a.dbf", "a.prj", "b.shp", "a.cpg"]),
            st.one_of(
                st.binary(max_size=200),
                st.binary(max_size=96).map(lambda b: b"\x00\x00\x27\x0a" + b),
            ),
        ).map(_bundle),
    )
)
def test_random_bytes_and_zips_as_shapefile(data: bytes) -> None:
    _parse_shapefile(data, None)
