"""GeoJSON FeatureCollections (RFC 7946, and the 2008 ``crs`` member) translated into rows.

Properties become fields by the dataset's field types, the geometry goes into the dataset's
geometry field (see connectors.features), and the feature's ``id`` into its ``id_field``.
The CRS is the ``--crs`` option's, else the one a top-level ``crs`` member names explicitly
(``EPSG:2326``, ``urn:ogc:def:crs:EPSG::2326``, ``urn:ogc:def:crs:OGC:1.3:CRS84``), else the
dataset's. A payload that is not JSON, not a FeatureCollection or Feature, or names a CRS that
cannot be resolved raises PayloadError; one bad feature becomes one invalid row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from connectors.crs import CrsError, crs_name
from connectors.errors import PayloadError
from connectors.features import (
    FeatureTranslator,
    GeometryProblem,
    SourceFeature,
    declared_geometry,
    source_crs,
)
from connectors.payload import ParsedPayload
from domain.dataset import DatasetDefinition
from domain.geo import WGS84

NAME = "geojson"
VERSION = "1"
FORMAT = "geojson"

_BOM = b"\xef\xbb\xbf"
_URN_EPSG = re.compile(r"^urn:ogc:def:crs:EPSG:[0-9.]*:(\d{4,6})$", re.IGNORECASE)
_CRS84 = frozenset(
    {"urn:ogc:def:crs:ogc:1.3:crs84", "urn:ogc:def:crs:ogc::crs84", "ogc:crs84", "crs84"}
)
_GEOMETRY_KEYS = frozenset({"type", "coordinates", "bbox"})


def parse_feature_collection(
    data: bytes, dataset: DatasetDefinition, crs: str | None = None
) -> ParsedPayload:
    """Read a FeatureCollection (or a single Feature); ``crs`` is the ``--crs`` override."""
    declared_geometry(dataset)
    document = _document(data)
    kind = document.get("type")
    if kind == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list):
            raise PayloadError(
                "not-geojson", "the FeatureCollection's features member is not a list"
            )
    elif kind == "Feature":
        features = [document]
    else:
        raise PayloadError(
            "not-geojson",
            f"expected a GeoJSON FeatureCollection or Feature, got type {str(kind)[:40]!r}",
        )
    chosen, notes = source_crs(dataset, crs, _declared_crs(document.get("crs")))
    translator = FeatureTranslator(dataset, chosen)
    rows = translator.rows(_features(features))
    return ParsedPayload(rows=rows, format=FORMAT, notes=(*notes, *translator.notes(rows)))


def _document(data: bytes) -> dict[str, object]:
    start = len(_BOM) if data.startswith(_BOM) else 0
    try:
        text = data[start:].decode("utf-8")
    except UnicodeDecodeError as error:
        raise PayloadError(
            "bad-encoding",
            f"not UTF-8 at byte offset {start + error.start}: "
            f"byte 0x{data[start + error.start]:02x}",
        ) from None
    if not text.strip():
        raise PayloadError("empty-payload", "the payload holds no data")
    try:
        document = json.loads(text)
    except RecursionError:
        raise PayloadError("not-json", "the JSON is nested too deeply to read") from None
    except ValueError as error:
        raise PayloadError("not-json", f"not JSON: {str(error)[:200]}") from None
    if not isinstance(document, dict):
        raise PayloadError(
            "not-geojson", f"expected a GeoJSON object, got a JSON {type(document).__name__}"
        )
    return document


def _declared_crs(member: object) -> str | None:
    """The CRS a GeoJSON ``crs`` member names explicitly, or None when there is none."""
    if member is None:
        return None
    if not isinstance(member, Mapping) or member.get("type") != "name":
        raise PayloadError(
            "unknown-crs",
            "the crs member must be {type: name, properties: {name: ...}}; "
            "linked CRSs are not read",
        )
    properties = member.get("properties")
    name = properties.get("name") if isinstance(properties, Mapping) else None
    if not isinstance(name, str):
        raise PayloadError("unknown-crs", "the crs member names no CRS")
    return geojson_crs_name(name)


def geojson_crs_name(text: str) -> str:
    """``EPSG:<code>`` or ``GCJ-02`` for a CRS name as GeoJSON files write it."""
    lowered = text.strip().lower()
    if lowered in _CRS84:
        return WGS84  # longitude/latitude on WGS-84, which is how EPSG:4326 is read here
    match = _URN_EPSG.match(text.strip())
    candidate = f"EPSG:{match.group(1)}" if match else text
    try:
        return crs_name(candidate)
    except CrsError as error:
        raise PayloadError("unknown-crs", f"the crs member: {error}") from None


def _features(features: list[Any]) -> Iterator[SourceFeature | str]:
    for feature in features:
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            yield "not a GeoJSON Feature object"
            continue
        properties = feature.get("properties")
        if properties is None:
            properties = {}
        if not isinstance(properties, dict):
            yield f"properties must be an object, got {type(properties).__name__}"
            continue
        feature_id = feature.get("id")
        if feature_id is not None and (
            isinstance(feature_id, bool) or not isinstance(feature_id, str | int)
        ):
            yield f"the feature id must be a string or a number, got {feature_id!r:.60}"
            continue
        yield SourceFeature(properties, _geometry(feature.get("geometry")), feature_id)


# How deep each type's coordinates nest: 1 is a position [x, y] or [x, y, z].
_DEPTH = {
    "Point": 1,
    "MultiPoint": 2,
    "LineString": 2,
    "MultiLineString": 3,
    "Polygon": 3,
    "MultiPolygon": 4,
}


def _nesting_problem(kind: object, coordinates: object) -> str | None:
    """Why ``coordinates`` are not nested as GeoJSON says for ``kind`` (shapely is lenient
    here: it reads a Point of [[1, 2]] as POINT (1 2))."""
    depth = _DEPTH.get(kind) if isinstance(kind, str) else None
    if depth is None:
        return f"unknown geometry type {str(kind)[:40]!r}"
    level: list[object] = [coordinates]
    for _ in range(depth - 1):
        nested: list[object] = []
        for item in level:
            if not isinstance(item, list):
                return f"the coordinates of a {kind} are not nested {depth} lists deep"
            nested.extend(item)
        level = nested
    for position in level:
        if (
            not isinstance(position, list)
            or len(position) not in (2, 3)
            or not all(isinstance(n, int | float) and not isinstance(n, bool) for n in position)
        ):
            return f"a position of the {kind} is not [x, y] or [x, y, z] numbers"
    return None


def _geometry(raw: object) -> BaseGeometry | GeometryProblem | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        return GeometryProblem(f"the geometry must be an object, got {type(raw).__name__}")
    extra = sorted(str(k)[:40] for k in raw if k not in _GEOMETRY_KEYS)
    if raw.get("type") == "GeometryCollection" or extra:
        return GeometryProblem(
            f"a {str(raw.get('type'))[:40]} geometry with members {extra} is not one shape"
            if extra
            else "GeometryCollection geometries are not stored (one shape per feature)"
        )
    problem = _nesting_problem(raw.get("type"), raw.get("coordinates"))
    if problem is not None:
        return GeometryProblem(f"the geometry cannot be read: {problem}")
    try:
        # NaN and huge numbers are caught below as not finite; numpy need not warn of them.
        with np.errstate(invalid="ignore", over="ignore"):
            geometry = shape(raw)
    except (
        shapely.errors.GeometryTypeError,
        shapely.errors.GEOSException,
        ValueError,
        OverflowError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
    ) as error:
        why = str(error)[:160] or type(error).__name__
        return GeometryProblem(f"the geometry cannot be read: {why}")
    return geometry
