"""Geographic features (properties and a geometry) translated into rows of a dataset's fields.

Shared by the GeoJSON, GeoParquet and Shapefile connectors. Each feature's geometry is read
in the CRS its source declares, checked against that CRS's area of use, transformed to
WGS-84, repaired with ``shapely.make_valid`` when invalid (the repair is written to the
dataset's ``repair_field`` and counted in the notes) and handed on as canonical GeoJSON.
Point geometries get their H3 cell when the dataset asks for one. A feature whose geometry
cannot be read, lies outside its CRS's area or cannot be repaired into the same kind of
shape becomes an invalid row saying so; the worker rejects it and keeps the rest.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

import h3
import numpy as np
import pyarrow as pa
import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from connectors.crs import CoordinateTransform, CrsError, Floats, crs_name, transform_for
from connectors.errors import PayloadError
from connectors.payload import INVALID_KEY, REGION_KEY
from domain.dataset import DatasetDefinition, FeatureGeometry, FieldType
from domain.geo import WGS84
from domain.geometry import InvalidGeometryError, canonical_geometry

_EXPECTED_EXTRA = frozenset({REGION_KEY})
ROUNDING_SLACK = 1e-12
"""How far, relative to an edge's magnitude, a coordinate may lie past its CRS's area of use
and still be taken as on the edge."""
# Kinds make_valid may turn a shape into without changing what it is.
_SAME_KIND = {
    "Point": {"Point"},
    "MultiPoint": {"MultiPoint", "Point"},
    "LineString": {"LineString", "MultiLineString"},
    "MultiLineString": {"MultiLineString", "LineString"},
    "Polygon": {"Polygon", "MultiPolygon"},
    "MultiPolygon": {"MultiPolygon", "Polygon"},
}


@dataclass(frozen=True, slots=True)
class GeometryProblem:
    """A geometry the source format could not even decode, and why."""

    message: str


@dataclass(frozen=True, slots=True)
class SourceFeature:
    """One feature as a format reader found it."""

    properties: Mapping[str, object]
    geometry: BaseGeometry | GeometryProblem | None
    feature_id: object = None


def arrow_features(
    table: pa.Table, geometry_column: str, skip: Iterable[str] = ()
) -> Iterator[SourceFeature]:
    """Features of an Arrow table whose ``geometry_column`` holds WKB; ``skip`` names columns
    that are not properties (other geometry columns, bounding-box coverings)."""
    dropped = {geometry_column, *skip}
    try:
        names = table.column_names
    except UnicodeDecodeError as error:
        raise PayloadError(
            "bad-column-names", f"a column name is not UTF-8 text (byte offset {error.start})"
        ) from None
    properties = table.drop_columns([c for c in names if c in dropped])
    wkb_values = table[geometry_column].to_pylist()
    for attributes, wkb in zip(_property_rows(properties), wkb_values, strict=True):
        if isinstance(attributes, str):
            yield SourceFeature({}, GeometryProblem(attributes))
        else:
            yield SourceFeature(attributes, _from_wkb(wkb))


def _property_rows(table: pa.Table) -> list[dict[str, object] | str]:
    """The table's rows as dicts; a row Arrow cannot turn into Python values (text that is
    not UTF-8, which Parquet does not check on reading) becomes the reason instead."""
    try:
        return list(table.to_pylist())
    except (UnicodeDecodeError, ValueError, OverflowError):
        pass
    out: list[dict[str, object] | str] = []
    for index in range(table.num_rows):
        try:
            out.append(table.slice(index, 1).to_pylist()[0])
        except (UnicodeDecodeError, ValueError, OverflowError) as error:
            out.append(f"its properties cannot be read: {str(error)[:160]}")
    return out


def _from_wkb(wkb: object) -> BaseGeometry | GeometryProblem | None:
    if wkb is None:
        return None
    if not isinstance(wkb, bytes):
        return GeometryProblem(f"the geometry is {type(wkb).__name__}, not WKB")
    try:
        with np.errstate(invalid="ignore", over="ignore"):
            geometry = shapely.from_wkb(wkb)
    except (shapely.errors.GEOSException, ValueError) as error:
        return GeometryProblem(f"the WKB geometry cannot be read: {str(error)[:160]}")
    return geometry


def declared_geometry(dataset: DatasetDefinition) -> FeatureGeometry:
    """The dataset's geometry field; PayloadError if it has none to put features into."""
    declaration = dataset.feature_geometry
    if declaration is None:
        raise PayloadError(
            "no-geometry-field",
            f"dataset {dataset.id!r} declares no geometry field "
            "(geometry: {field: ..., crs: ...}) to hold features",
        )
    return declaration


def source_crs(
    dataset: DatasetDefinition, override: str | None, declared_by_source: str | None
) -> tuple[str, list[str]]:
    """Which CRS the payload's coordinates are in, and a note on how that was decided.

    ``--crs`` wins over what the source declares, which wins over the dataset's CRS. Nothing
    is ever inferred from the coordinates themselves.
    """
    declaration = declared_geometry(dataset)
    if override is not None:
        try:
            chosen = crs_name(override)
        except CrsError as error:
            raise PayloadError("bad-crs", f"--crs: {error}") from None
        notes = [f"coordinates read as {chosen}, as the --crs option says"]
        if declared_by_source is not None and declared_by_source != chosen:
            notes.append(f"the source declares {declared_by_source}; --crs overrides it")
        return chosen, notes
    if declared_by_source is not None:
        note = f"coordinates read as {declared_by_source}, as the source declares"
        if declared_by_source != declaration.crs:
            note += f" (the dataset's default is {declaration.crs})"
        return declared_by_source, [note]
    return declaration.crs, [f"coordinates read as {declaration.crs}, the dataset's CRS"]


@dataclass
class FeatureTranslator:
    """Turns features into rows for one payload, tallying what it had to do on the way."""

    dataset: DatasetDefinition
    crs: str
    _declaration: FeatureGeometry = field(init=False)
    _transform: CoordinateTransform = field(init=False)
    _types: dict[str, FieldType] = field(init=False)
    _tally: Counter[str] = field(init=False, default_factory=Counter)
    _unknown: set[str] = field(init=False, default_factory=set)
    _invalid: int = field(init=False, default=0)
    _ids_dropped: int = field(init=False, default=0)
    _renamed: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._declaration = declared_geometry(self.dataset)
        try:
            self._transform = transform_for(self.crs)
        except CrsError as error:
            raise PayloadError("bad-crs", str(error)) from None
        self._types = {spec.name: spec.type for spec in self.dataset.fields}
        self._filled = {
            name
            for name in (
                self._declaration.field,
                self._declaration.h3_field,
                self._declaration.repair_field,
                self._declaration.id_field,
            )
            if name is not None
        }

    def rows(self, features: Iterable[SourceFeature | str]) -> list[dict[str, object]]:
        """One row per feature; a ``str`` stands for a feature unreadable for that reason."""
        out: list[dict[str, object]] = []
        for index, feature in enumerate(features):
            if isinstance(feature, str):
                out.append(self._bad(index, feature))
            else:
                out.append(self.row(index, feature))
        return out

    def row(self, index: int, feature: SourceFeature) -> dict[str, object]:
        clash = sorted(self._filled & {self._field_name(str(p)) for p in feature.properties})
        if clash:
            return self._bad(index, f"properties {clash} clash with the fields the geometry fills")
        row: dict[str, object] = {}
        for source_name, raw in feature.properties.items():
            name = self._field_name(str(source_name))
            kind = self._types.get(name)
            if kind is None and name not in _EXPECTED_EXTRA:
                self._unknown.add(name)
            row[name] = _convert(raw, kind)
        declaration = self._declaration
        if feature.feature_id is not None:
            if declaration.id_field is not None:
                row[declaration.id_field] = feature.feature_id
            else:
                self._ids_dropped += 1
        geometry = feature.geometry
        if isinstance(geometry, GeometryProblem):
            return self._bad(index, geometry.message)
        if geometry is None or geometry.is_empty:
            self._tally["features have no geometry"] += 1
            row[declaration.field] = None
            return row
        try:
            with np.errstate(invalid="ignore", over="ignore"):
                value, repair = self._normalised(geometry)
        except _FeatureError as problem:
            return self._bad(index, str(problem))
        row[declaration.field] = value
        if repair is not None and declaration.repair_field is not None:
            row[declaration.repair_field] = repair
        if declaration.h3_field is not None and value["type"] == "Point":
            lon, lat = cast(list[float], value["coordinates"])
            row[declaration.h3_field] = h3.latlng_to_cell(lat, lon, declaration.h3_resolution)
        return row

    def _field_name(self, name: str) -> str:
        """The field a property fills: its own name, or (for shapefile-style upper-case
        names such as DC_CODE) the field named by its ASCII lower case, noted."""
        if name in self._types:
            return name
        lowered = name.lower() if name.isascii() else name
        if lowered != name and lowered in self._types:
            self._renamed[name] = lowered
            return lowered
        return name

    def notes(self, rows: list[dict[str, object]]) -> tuple[str, ...]:
        notes = [f"{count} {what}" for what, count in sorted(self._tally.items())]
        if self._renamed:
            pairs = ", ".join(f"{a} -> {b}" for a, b in sorted(self._renamed.items()))
            notes.append(f"properties matched to fields by lower case: {pairs}")
        if self._invalid:
            notes.append(f"{self._invalid} features could not be read and are passed on as invalid")
        if self._unknown:
            notes.append(
                f"properties not in {self.dataset.id!r} were kept: {sorted(self._unknown)}"
            )
        if self._ids_dropped:
            notes.append(
                f"{self._ids_dropped} feature ids were not kept: the dataset declares no "
                "geometry.id_field"
            )
        if not rows:
            notes.append("the payload holds no features")
        return tuple(notes)

    def _bad(self, index: int, message: str) -> dict[str, object]:
        self._invalid += 1
        return {INVALID_KEY: f"feature {index}: {message}"}

    def _to_wgs84(self, coords: Floats) -> Floats:
        lons, lats = self._transform.to_wgs84(coords[:, 0], coords[:, 1])
        return np.column_stack([lons, lats])

    def _normalised(self, geometry: BaseGeometry) -> tuple[dict[str, object], str | None]:
        kind = geometry.geom_type
        if kind not in _SAME_KIND:
            raise _FeatureError(f"{kind} geometries are not stored (one shape per feature)")
        if shapely.has_z(geometry):
            geometry = shapely.force_2d(geometry)
            self._tally["geometries lost their z coordinates"] += 1
        coords = shapely.get_coordinates(geometry)
        if not np.isfinite(coords).all():
            raise _FeatureError("the geometry holds coordinates that are not finite numbers")
        if not self._transform.within(coords[:, 0], coords[:, 1]):
            if not self._transform.within(coords[:, 0], coords[:, 1], ROUNDING_SLACK):
                min_x, min_y, max_x, max_y = self._transform.bounds
                raise _FeatureError(
                    f"the geometry lies partly outside the area of use of {self.crs} "
                    f"({min_x:.6g}, {min_y:.6g}, {max_x:.6g}, {max_y:.6g})"
                )
            # Past the edge by a rounding error only (Natural Earth's Russia reaches
            # 180.00000000000006): on the edge is what the source meant.
            geometry = shapely.transform(geometry, self._transform.clamped)
            self._tally[
                "geometries were a rounding error past their CRS's area; moved onto its edge"
            ] += 1
        if self.crs != WGS84:
            geometry = shapely.transform(geometry, self._to_wgs84)
        repair = None
        if not shapely.is_valid(geometry):
            reason = shapely.is_valid_reason(geometry)
            repaired = shapely.make_valid(geometry, method="structure", keep_collapsed=False)
            if repaired.is_empty or repaired.geom_type not in _SAME_KIND[kind]:
                raise _FeatureError(
                    f"the {kind} is invalid ({reason}) and repairing it left "
                    f"{'nothing' if repaired.is_empty else 'a ' + repaired.geom_type}"
                )
            repair = f"make_valid: {reason}; {kind} became {repaired.geom_type}"
            geometry = repaired
            self._tally["invalid geometries were repaired with make_valid"] += 1
        try:
            return canonical_geometry(mapping(geometry)), repair
        except InvalidGeometryError as error:
            raise _FeatureError(error.message) from None


class _FeatureError(Exception):
    """Why one feature's geometry cannot be stored (becomes that feature's invalid row)."""


def _convert(raw: object, kind: FieldType | None) -> object:
    """A property as its field's type where that is a plain reading; otherwise as it came."""
    if kind is FieldType.TIMESTAMP:
        if isinstance(raw, str):
            try:
                value = datetime.fromisoformat(raw.strip())
            except ValueError:
                return raw
            return raw if value.tzinfo is None else value.astimezone(UTC)
        if isinstance(raw, datetime) and raw.tzinfo is not None:
            return raw.astimezone(UTC)
        return raw
    if kind is FieldType.FLOAT64 and isinstance(raw, int) and not isinstance(raw, bool):
        try:
            return float(raw)
        except OverflowError:
            return raw
    if isinstance(raw, float) and math.isnan(raw) and kind is not FieldType.FLOAT64:
        return None  # readers fill missing numbers with NaN
    return raw
