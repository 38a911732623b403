"""Hypothesis strategies for geographic payloads, and the check every geo parser must pass."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hypothesis import event
from hypothesis import strategies as st

from connectors.errors import PayloadError
from connectors.geometry_inspector import ShapelyInspector
from connectors.payload import INVALID_KEY, ParsedPayload
from domain.dataset import DatasetDefinition
from domain.geometry import canonical_geometry
from domain.record import RecordValidator
from domain.region import RegionRegistry
from domain.rejection import RejectionReason

NOW = datetime(2026, 11, 27, tzinfo=UTC)
GEOMETRY_TYPES = [
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
    "Circle",
]

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-200, max_value=200),
    st.floats(min_value=113.8, max_value=114.5),  # Hong Kong in degrees
    st.floats(min_value=800_000, max_value=850_000),  # Hong Kong 1980 Grid metres
    st.integers(min_value=-(10**30), max_value=10**30),
)
junk = st.one_of(st.none(), st.booleans(), st.text(max_size=8), numbers)
position = st.one_of(
    st.lists(numbers, min_size=2, max_size=2),
    st.lists(numbers, min_size=0, max_size=4),
    st.lists(junk, max_size=3),
)


def _ring(points: list[list[float]]) -> list[list[float]]:
    return [*points, points[0]] if points else points


# Rings of random points: mostly self-intersecting, sometimes degenerate, sometimes open.
rings = st.one_of(
    st.lists(st.lists(numbers, min_size=2, max_size=2), min_size=3, max_size=8).map(_ring),
    st.lists(position, max_size=6),
)
nested = st.recursive(
    st.one_of(position, junk),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=30,
)


@st.composite
def geometries(draw: st.DrawFn) -> object:
    kind = draw(st.sampled_from(GEOMETRY_TYPES))
    shaped = {
        "Point": position,
        "MultiPoint": st.lists(position, max_size=4),
        "LineString": st.lists(position, max_size=5),
        "MultiLineString": st.lists(st.lists(position, max_size=4), max_size=3),
        "Polygon": st.lists(rings, max_size=3),
        "MultiPolygon": st.lists(st.lists(rings, max_size=2), max_size=3),
    }.get(kind, nested)
    coordinates = draw(st.one_of(shaped, nested))
    geometry: dict[str, object] = {"type": kind, "coordinates": coordinates}
    if draw(st.booleans()):
        extra = st.dictionaries(st.sampled_from(["bbox", "crs", "geometries"]), nested, max_size=2)
        geometry.update(draw(extra))
    return draw(st.one_of(st.just(geometry), st.none(), junk, nested))


def features(field_names: list[str]) -> st.SearchStrategy[object]:
    properties = st.dictionaries(
        st.one_of(st.sampled_from([*field_names, "region", "colour"]), st.text(max_size=6)),
        st.one_of(junk, st.sampled_from(["2026-01-01T00:00:00+08:00", "深水\ue88c", "2026-13-01"])),
        max_size=6,
    )
    feature = st.fixed_dictionaries(
        {"type": st.sampled_from(["Feature", "Feature", "feature"]), "geometry": geometries()},
        optional={"properties": st.one_of(properties, junk), "id": st.one_of(junk, nested)},
    )
    return st.one_of(feature, feature, junk, nested)


hk_lon = st.floats(min_value=113.9, max_value=114.4)
hk_lat = st.floats(min_value=22.2, max_value=22.5)
hk_position = st.tuples(hk_lon, hk_lat).map(list)
hk_ring = st.lists(hk_position, min_size=3, max_size=7).map(_ring)


@st.composite
def plausible_geometries(draw: st.DrawFn) -> dict[str, object]:
    """Shapes in Hong Kong, in degrees: often self-intersecting, sometimes spoilt by one value."""
    kind = draw(st.sampled_from(["Point", "LineString", "Polygon", "MultiPolygon"]))
    coordinates: object = {
        "Point": draw(hk_position),
        "LineString": draw(st.lists(hk_position, min_size=2, max_size=5)),
        "Polygon": draw(st.lists(hk_ring, min_size=1, max_size=2)),
        "MultiPolygon": draw(st.lists(st.lists(hk_ring, min_size=1, max_size=2), max_size=2)),
    }[kind]
    if draw(st.integers(0, 3)) == 0:
        coordinates = draw(spoilt(coordinates))
    return {"type": kind, "coordinates": coordinates}


def spoilt(value: object) -> st.SearchStrategy[object]:
    """``value`` with one number replaced by junk or one list wrapped in another."""

    @st.composite
    def spoil(draw: st.DrawFn) -> object:
        def walk(item: object) -> object:
            if isinstance(item, list) and item:
                at = draw(st.integers(0, len(item) - 1))
                if draw(st.integers(0, 4)) == 0:
                    return [*item[:at], [item[at]], *item[at + 1 :]]
                return [*item[:at], walk(item[at]), *item[at + 1 :]]
            return draw(junk)

        return walk(value)

    return spoil()


def plausible_features(field_names: list[str]) -> st.SearchStrategy[dict[str, object]]:
    """Features the shipped datasets could take, with now and then one thing wrong."""
    texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
    properties = st.fixed_dictionaries(
        {"valid_from": st.sampled_from(["2026-01-01T00:00:00+08:00", "2026-06-30T12:00:00Z"])},
        optional={name: st.one_of(texts, junk) for name in field_names if name != "valid_from"},
    )
    return st.fixed_dictionaries(
        {
            "type": st.just("Feature"),
            "id": st.one_of(texts, st.integers(0, 10**6)),
            "properties": properties,
            "geometry": st.one_of(plausible_geometries(), st.none()),
        }
    )


crs_names = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "EPSG:4326",
            "EPSG:2326",
            "GCJ-02",
            "EPSG:8433",
            "urn:ogc:def:crs:EPSG::2326",
            "urn:ogc:def:crs:OGC:1.3:CRS84",
            "EPSG:4978",
            "bogus",
        ]
    ),
)


def mutated(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` with a few bytes flipped, dropped, inserted or the tail cut off."""

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 6))):
            if not out:
                break
            at = draw(st.integers(0, len(out) - 1))
            action = draw(st.sampled_from(["flip", "drop", "insert", "cut"]))
            if action == "flip":
                out[at] ^= draw(st.integers(1, 255))
            elif action == "drop":
                del out[at]
            elif action == "insert":
                out[at:at] = draw(st.binary(min_size=1, max_size=4))
            else:
                del out[at:]
        return bytes(out)

    return mutate()


def parsed_or_error(parse: Callable[[], ParsedPayload]) -> ParsedPayload | None:
    """The parse's result, or None when it raised PayloadError (the one error allowed),
    which must carry a reason code and a message."""
    failure: PayloadError | None = None
    try:
        return parse()
    except PayloadError as error:
        failure = error
    event(f"payload error: {failure.reason}")
    assert failure.reason
    assert failure.message
    return None


def check_rows_rejected_with_reasons(parsed: ParsedPayload, dataset: DatasetDefinition) -> None:
    """Every row is accepted by the worker's rules or rejected with a reason; none vanish."""
    for row in parsed.rows:
        assert isinstance(row, dict)
        if INVALID_KEY in row:
            assert isinstance(row[INVALID_KEY], str)
            assert row[INVALID_KEY]
    batch = RecordValidator(
        dataset, RegionRegistry.default(), geometry_inspector=ShapelyInspector()
    ).validate(parsed.rows, "hk", NOW)
    assert len(batch.accepted) + len(batch.rejected) == len(parsed.rows)
    # The connectors repair what they publish: GEOS finds nothing wrong with any of it.
    assert not [r for r in batch.rejected if r.reason is RejectionReason.INVALID_GEOMETRY]
    event(f"accepted: {'some' if batch.accepted else 'none'}")
    event(f"rejected: {'some' if batch.rejected else 'none'}")
    for rejection in batch.rejected:
        event(f"reason: {rejection.reason.value}")
    for rejection in batch.rejected:
        assert rejection.message
    declaration = dataset.feature_geometry
    assert declaration is not None
    at = 2 + dataset.field_names.index(declaration.field)
    for record in batch.accepted:
        value = record[at]
        if value is not None:
            assert canonical_geometry(value) == value
            assert _within_wgs84(value)


def _within_wgs84(value: Any) -> bool:
    def positions(item: Any) -> list[list[float]]:
        if item and isinstance(item[0], float):
            return [item]
        return [p for sub in item for p in positions(sub)]

    return all(
        math.isfinite(x) and -180 <= x <= 180 and -90 <= y <= 90
        for x, y in positions(value["coordinates"])
    )
