"""Every geo parser, fed mutated real files, random bytes and generated features: it never
crashes (only PayloadError), never hangs, and every bad feature is rejected with a reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import datasets
from connectors.geojson import parse_feature_collection
from tests.support.geo_payloads import (
    check_rows_rejected_with_reasons,
    crs_names,
    features,
    mutated,
    parsed_or_error,
    plausible_features,
    spoilt,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "geo"
DISTRICT = json.loads((FIXTURES / "hk-central-western.geojson").read_text(encoding="utf-8"))
DISTRICT["features"][0]["properties"]["valid_from"] = "2026-01-01T00:00:00+08:00"
DISTRICT_BYTES = json.dumps(DISTRICT, ensure_ascii=False).encode()
DISTRICTS = datasets.load(datasets.HK_DISTRICT_BOUNDARIES)
DETECTORS = datasets.load(datasets.HK_TRAFFIC_DETECTORS)
EXAMPLES = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
pytestmark = pytest.mark.timeout(600)


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
