"""Geometry fields: declared beside the point form, their values checked and made canonical."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.dataset import DatasetDefinition, FeatureGeometry, FieldType
from domain.errors import DatasetDefinitionError
from domain.geometry import InvalidGeometryError, canonical_geometry
from domain.record import RecordValidator
from domain.region import RegionRegistry
from domain.rejection import RejectionReason

NOW = datetime(2026, 11, 27, tzinfo=UTC)
SQUARE = [[114.1, 22.2], [114.2, 22.2], [114.2, 22.3], [114.1, 22.3], [114.1, 22.2]]


def districts(**geometry: Any) -> dict[str, Any]:
    return {
        "id": "hk.geo.districts",
        "kind": "geospatial",
        "owner_region": "hk",
        "title": {"en": "Districts", "zh-Hant": "地區", "zh-Hans": "地区"},
        "time_field": "valid_from",
        "key_fields": ["code"],
        "geometry": {"field": "boundary", "crs": "EPSG:2326", **geometry},
        "fields": [
            {"name": "code", "type": "string"},
            {"name": "valid_from", "type": "timestamp"},
            {"name": "name_zh", "type": "string"},
            {"name": "boundary", "type": "geometry"},
            {"name": "h3_cell", "type": "string"},
            {"name": "geometry_repair", "type": "string"},
        ],
    }


DISTRICTS = DatasetDefinition.from_dict(
    districts(h3_field="h3_cell", h3_resolution=8, repair_field="geometry_repair")
)


def test_a_geometry_field_is_declared_beside_the_point_form() -> None:
    assert DISTRICTS.geometry is None
    assert DISTRICTS.feature_geometry == FeatureGeometry(
        field="boundary",
        crs="EPSG:2326",
        h3_field="h3_cell",
        h3_resolution=8,
        repair_field="geometry_repair",
    )
    assert DISTRICTS.field("boundary").type is FieldType.GEOMETRY
    again = DatasetDefinition.from_dict(DISTRICTS.as_dict())
    assert again.feature_geometry == DISTRICTS.feature_geometry
    assert again.as_dict() == DISTRICTS.as_dict()


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"crs": "WGS84"}, "not a CRS name"),
        ({"field": "nowhere"}, "not declared"),
        ({"field": "name_zh"}, "must have type geometry"),
        ({"h3_field": "boundary"}, "must be a string"),
        ({"h3_resolution": 16}, "h3_resolution"),
        ({"h3_resolution": True}, "h3_resolution"),
        ({"simplify": 3}, "unknown keys"),
        ({"lat": "code"}, "unknown keys"),
    ],
)
def test_a_wrong_geometry_declaration_is_refused_saying_why(
    change: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(DatasetDefinitionError, match=complaint):
        DatasetDefinition.from_dict(districts(**change))


def test_a_geometry_typed_field_needs_the_declaration_that_gives_its_crs() -> None:
    document = districts()
    del document["geometry"]
    with pytest.raises(DatasetDefinitionError, match="not the dataset's geometry"):
        DatasetDefinition.from_dict(document)


def test_a_geometry_field_cannot_key_a_record() -> None:
    with pytest.raises(DatasetDefinitionError, match="cannot be a key"):
        DatasetDefinition.from_dict({**districts(), "key_fields": ["boundary"]})


def _row(boundary: object, **more: object) -> dict[str, object]:
    return {
        "code": "A",
        "valid_from": "2026-01-01T00:00:00+08:00",
        "name_zh": "中西區",
        "boundary": boundary,
        **more,
    }


def _validate(*rows: dict[str, object]) -> tuple[list[list[object]], list[tuple[str, str]]]:
    batch = RecordValidator(DISTRICTS, RegionRegistry.default()).validate(list(rows), "hk", NOW)
    return batch.accepted, [(r.reason.value, r.message) for r in batch.rejected]


def test_a_geojson_polygon_is_accepted_in_canonical_form() -> None:
    accepted, rejected = _validate(
        _row({"coordinates": [[[114, 22], [115, 22], [115, 23], [114, 22]]], "type": "Polygon"})
    )
    assert rejected == []
    value = accepted[0][2 + DISTRICTS.field_names.index("boundary")]
    assert value == {
        "type": "Polygon",
        "coordinates": [[[114.0, 22.0], [115.0, 22.0], [115.0, 23.0], [114.0, 22.0]]],
    }
    assert isinstance(value, dict)
    assert list(value) == ["type", "coordinates"]


def test_the_same_shape_encodes_to_the_same_bytes_however_it_arrived() -> None:
    a = canonical_geometry({"type": "Polygon", "coordinates": [SQUARE], "bbox": [0, 0, 1, 1]})
    b = canonical_geometry({"coordinates": (tuple(map(tuple, SQUARE)),), "type": "Polygon"})
    assert msgspec.msgpack.encode(a) == msgspec.msgpack.encode(b)


def test_text_around_the_geometry_keeps_its_script() -> None:
    accepted, _ = _validate(
        _row({"type": "Point", "coordinates": [114.15, 22.28]}, name_zh="深水埗")
    )
    assert "深水埗" in accepted[0]


@pytest.mark.parametrize(
    ("boundary", "reason", "words"),
    [
        ({"type": "Polygon", "coordinates": [SQUARE[:-1]]}, "invalid-geometry", "not closed"),
        ({"type": "Polygon", "coordinates": [SQUARE[:3]]}, "invalid-geometry", "at least 4"),
        ({"type": "LineString", "coordinates": [[1, 2]]}, "invalid-geometry", "at least 2"),
        ({"type": "Point", "coordinates": [1, 2, 3]}, "invalid-geometry", "longitude, latitude"),
        ({"type": "Point", "coordinates": [1, math.nan]}, "not-finite", "not a finite"),
        (
            {"type": "Point", "coordinates": [833758.0, 812147.0]},
            "coordinates-out-of-area",
            "WGS-84",
        ),
        ({"type": "Point", "coordinates": ["114", 22]}, "invalid-geometry", "not a number"),
        ({"type": "Point", "coordinates": [True, 22]}, "invalid-geometry", "not a number"),
        ({"type": "Point", "coordinates": [10**400, 22]}, "out-of-range", "does not fit"),
        ({"type": "Point"}, "invalid-geometry", "no coordinates"),
        ({"type": "Circle", "coordinates": [1, 2]}, "invalid-geometry", "not one of"),
        ({"type": "GeometryCollection", "geometries": []}, "invalid-geometry", "not one of"),
        ({"type": "MultiPolygon", "coordinates": []}, "invalid-geometry", "empty"),
        ({"type": "Polygon", "coordinates": [[SQUARE]]}, "invalid-geometry", "position"),
        ({"type": "Point", "coordinates": [1, 2], "crs": "EPSG:2326"}, "invalid-geometry", "crs"),
        ("POINT (114 22)", "wrong-type", "mapping"),
        ({"type": "Point", "coordinates": "114,22"}, "invalid-geometry", "must be a list"),
    ],
)
def test_a_bad_geometry_is_rejected_with_a_reason(
    boundary: object, reason: str, words: str
) -> None:
    accepted, rejected = _validate(_row(boundary))
    assert accepted == []
    ((got_reason, message),) = rejected
    assert got_reason == reason
    assert words in message
    assert "'boundary'" in message


def test_a_missing_geometry_is_null_unless_required() -> None:
    accepted, rejected = _validate(_row(None))
    assert rejected == []
    assert accepted[0][2 + DISTRICTS.field_names.index("boundary")] is None


_number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
)
_json_like = st.recursive(
    st.one_of(_number, st.just("Polygon"), st.just("Point")),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(
            st.sampled_from(["type", "coordinates", "bbox", "crs", "x"]), inner, max_size=4
        ),
    ),
    max_leaves=40,
)
_geometry_like = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"]
        ),
        "coordinates": _json_like,
    }
)


@settings(max_examples=1000, deadline=None)
@given(value=st.one_of(_geometry_like, _json_like))
def test_any_value_is_made_canonical_or_refused_with_a_reason(value: object) -> None:
    refused: InvalidGeometryError | None = None
    try:
        canonical = canonical_geometry(value)
    except InvalidGeometryError as error:
        refused = error
    if refused is not None:
        assert isinstance(refused.reason, RejectionReason)
        assert refused.message
        return
    assert canonical_geometry(canonical) == canonical
    encoded = msgspec.msgpack.encode(canonical)
    assert msgspec.msgpack.encode(canonical_geometry(msgspec.msgpack.decode(encoded))) == encoded
