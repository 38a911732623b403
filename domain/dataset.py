"""Dataset definitions: what a data set holds, who owns it and how protected each field is."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, TypeVar

from domain.classification import Classification
from domain.errors import DatasetDefinitionError, DomainError
from domain.region import RegionRegistry

_DATASET_ID = re.compile(r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$")
_FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_CRS = re.compile(r"^(EPSG:\d{4,6}|GCJ-02)$")
MAX_PARTITIONS = 64
_E = TypeVar("_E", bound=Enum)


class DatasetKind(StrEnum):
    """The three families of data the platform shares."""

    TRAFFIC = "traffic"
    GEOSPATIAL = "geospatial"
    ECONOMIC = "economic"


class FieldType(StrEnum):
    """Wire and storage types a field may have."""

    STRING = "string"
    INT64 = "int64"
    FLOAT64 = "float64"
    BOOL = "bool"
    TIMESTAMP = "timestamp"
    GEOMETRY = "geometry"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a dataset's records."""

    name: str
    type: FieldType
    classification: Classification = Classification.PUBLIC
    unit: str | None = None
    personal: bool = False
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type.value,
            "classification": self.classification.label,
        }
        if self.unit is not None:
            out["unit"] = self.unit
        if self.personal:
            out["personal"] = True
        if self.required:
            out["required"] = True
        if self.minimum is not None:
            out["min"] = self.minimum
        if self.maximum is not None:
            out["max"] = self.maximum
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True, slots=True)
class PointGeometry:
    """A point given by two fields in a declared CRS (x = lon/easting, y = lat/northing)."""

    lat: str
    lon: str
    crs: str = "EPSG:4326"

    def as_dict(self) -> dict[str, str]:
        return {"lat": self.lat, "lon": self.lon, "crs": self.crs}


H3_DEFAULT_RESOLUTION = 9
"""Hexagons of about 0.1 km² (edges of about 200 m): a city block, for area queries."""
H3_MAX_RESOLUTION = 15


@dataclass(frozen=True, slots=True)
class FeatureGeometry:
    """A whole geometry held in one field (``type: geometry``), given by sources in ``crs``.

    Connectors transform it to WGS-84 and repair it before it is published, so the field's
    value is a GeoJSON geometry in WGS-84 from then on. Optional companions: ``h3_field``
    (a string field) gets the H3 cell of point geometries at ``h3_resolution``;
    ``repair_field`` (a string field) says how a geometry was repaired; ``id_field`` gets
    the feature's own id.
    """

    field: str
    crs: str = "EPSG:4326"
    h3_field: str | None = None
    h3_resolution: int = H3_DEFAULT_RESOLUTION
    repair_field: str | None = None
    id_field: str | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"field": self.field, "crs": self.crs}
        if self.h3_field is not None:
            out["h3_field"] = self.h3_field
            out["h3_resolution"] = self.h3_resolution
        if self.repair_field is not None:
            out["repair_field"] = self.repair_field
        if self.id_field is not None:
            out["id_field"] = self.id_field
        return out


@dataclass(frozen=True)
class DatasetDefinition:
    """A registered dataset: identity, owner, schema and the fields that key a record."""

    id: str
    kind: DatasetKind
    owner_region: str
    title: Mapping[str, str]
    time_field: str
    key_fields: tuple[str, ...]
    fields: tuple[FieldSpec, ...]
    geometry: PointGeometry | None = None
    version: int = 1
    partitions: int = 4
    description: str = ""
    # Declared under the same ``geometry`` key as the point form; a dataset has one or other.
    feature_geometry: FeatureGeometry | None = None
    _by_name: Mapping[str, FieldSpec] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {f.name: f for f in self.fields})

    @property
    def classification(self) -> Classification:
        """The dataset is as protected as its most protected field."""
        return max(f.classification for f in self.fields)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def ingest_topic(self) -> str:
        return f"baylink.ingest.{self.id}.v{self.version}"

    def field(self, name: str) -> FieldSpec:
        try:
            return self._by_name[name]
        except KeyError:
            raise DatasetDefinitionError(f"dataset {self.id!r} has no field {name!r}") from None

    def has_field(self, name: str) -> bool:
        return name in self._by_name

    def as_dict(self) -> dict[str, Any]:
        """The definition in the same shape as the YAML it was read from."""
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind.value,
            "owner_region": self.owner_region,
            "title": dict(self.title),
            "time_field": self.time_field,
            "key_fields": list(self.key_fields),
            "fields": [f.as_dict() for f in self.fields],
            "version": self.version,
            "partitions": self.partitions,
        }
        if self.geometry is not None:
            out["geometry"] = self.geometry.as_dict()
        elif self.feature_geometry is not None:
            out["geometry"] = self.feature_geometry.as_dict()
        if self.description:
            out["description"] = self.description
        return out

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], regions: RegionRegistry | None = None
    ) -> DatasetDefinition:
        """Read a definition, naming the first thing that is wrong with it."""
        return _parse_definition(data, regions or RegionRegistry.default())


def _require(data: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in data or data[key] is None:
        raise DatasetDefinitionError(f"{where}: missing required key {key!r}")
    return data[key]


def _as_str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DatasetDefinitionError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _parse_enum(enum: type[_E], value: Any, where: str) -> _E:
    try:
        return enum(value)
    except ValueError:
        known = ", ".join(str(m.value) for m in enum)
        raise DatasetDefinitionError(f"{where}: {value!r} is not one of {known}") from None


def _parse_number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DatasetDefinitionError(f"{where}: expected a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        raise DatasetDefinitionError(f"{where}: {value!r} does not fit in a float") from None
    if not math.isfinite(number):
        raise DatasetDefinitionError(f"{where}: expected a finite number, got {value!r}")
    return number


def _parse_field(raw: Any, index: int, always_required: set[str]) -> FieldSpec:
    where = f"fields[{index}]"
    if not isinstance(raw, Mapping):
        raise DatasetDefinitionError(f"{where}: expected a mapping, got {raw!r}")
    name = _as_str(_require(raw, "name", where), f"{where}.name")
    if not _FIELD_NAME.match(name):
        raise DatasetDefinitionError(
            f"{where}.name: {name!r} must be lower case letters, digits and underscores"
        )
    where = f"field {name!r}"
    ftype = _parse_enum(FieldType, _require(raw, "type", where), f"{where}.type")
    try:
        level = Classification.parse(str(raw.get("classification", "public")))
    except DomainError as error:
        raise DatasetDefinitionError(f"{where}: {error}") from None
    unknown = set(raw) - {
        "name",
        "type",
        "classification",
        "unit",
        "personal",
        "required",
        "min",
        "max",
        "description",
    }
    if unknown:
        raise DatasetDefinitionError(f"{where}: unknown keys {sorted(unknown)}")
    minimum = _parse_number(raw.get("min"), f"{where}.min")
    maximum = _parse_number(raw.get("max"), f"{where}.max")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise DatasetDefinitionError(f"{where}: min {minimum} is above max {maximum}")
    if (minimum is not None or maximum is not None) and ftype not in (
        FieldType.INT64,
        FieldType.FLOAT64,
    ):
        raise DatasetDefinitionError(f"{where}: min/max only apply to numeric fields")
    return FieldSpec(
        name=name,
        type=ftype,
        classification=level,
        unit=str(raw["unit"]) if raw.get("unit") is not None else None,
        personal=bool(raw.get("personal", False)),
        required=bool(raw.get("required", False)) or name in always_required,
        minimum=minimum,
        maximum=maximum,
        description=str(raw.get("description", "")),
    )


def _parse_crs(raw: Mapping[str, Any]) -> str:
    crs = str(raw.get("crs", "EPSG:4326"))
    if not _CRS.match(crs):
        raise DatasetDefinitionError(
            f"geometry.crs: {crs!r} is not a CRS name (EPSG:<code> or GCJ-02)"
        )
    return crs


def _parse_geometry(raw: Any, names: set[str]) -> PointGeometry | FeatureGeometry:
    if not isinstance(raw, Mapping):
        raise DatasetDefinitionError(f"geometry: expected a mapping, got {raw!r}")
    if "field" in raw:
        return _parse_feature_geometry(raw, names)
    unknown = set(raw) - {"lat", "lon", "crs"}
    if unknown:
        raise DatasetDefinitionError(
            f"geometry: unknown keys {sorted(map(str, unknown))} for the point form "
            "(lat, lon, crs); a geometry field is declared with field and crs"
        )
    lat = _as_str(_require(raw, "lat", "geometry"), "geometry.lat")
    lon = _as_str(_require(raw, "lon", "geometry"), "geometry.lon")
    crs = _parse_crs(raw)
    for name in (lat, lon):
        if name not in names:
            raise DatasetDefinitionError(f"geometry names field {name!r}, which is not declared")
    return PointGeometry(lat=lat, lon=lon, crs=crs)


_FEATURE_KEYS = {"field", "crs", "h3_field", "h3_resolution", "repair_field", "id_field"}


def _parse_feature_geometry(raw: Mapping[str, Any], names: set[str]) -> FeatureGeometry:
    unknown = set(raw) - _FEATURE_KEYS
    if unknown:
        raise DatasetDefinitionError(
            f"geometry: unknown keys {sorted(map(str, unknown))}; "
            f"a geometry field is declared with {sorted(_FEATURE_KEYS)}"
        )
    companions: dict[str, str | None] = {}
    for key in ("field", "h3_field", "repair_field", "id_field"):
        value = raw.get(key)
        if value is None and key != "field":
            companions[key] = None
            continue
        name = _as_str(value, f"geometry.{key}")
        if name not in names:
            raise DatasetDefinitionError(
                f"geometry.{key} names field {name!r}, which is not declared"
            )
        companions[key] = name
    resolution = raw.get("h3_resolution", H3_DEFAULT_RESOLUTION)
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, int)
        or not 0 <= resolution <= H3_MAX_RESOLUTION
    ):
        raise DatasetDefinitionError(
            f"geometry.h3_resolution must be a whole number from 0 to {H3_MAX_RESOLUTION}"
        )
    field_name = companions["field"]
    assert field_name is not None
    return FeatureGeometry(
        field=field_name,
        crs=_parse_crs(raw),
        h3_field=companions["h3_field"],
        h3_resolution=resolution,
        repair_field=companions["repair_field"],
        id_field=companions["id_field"],
    )


def _check_feature_geometry(
    geometry: FeatureGeometry, by_name: Mapping[str, FieldSpec], where: str
) -> None:
    if by_name[geometry.field].type is not FieldType.GEOMETRY:
        raise DatasetDefinitionError(
            f"{where}: geometry field {geometry.field!r} must have type geometry"
        )
    for name in (geometry.h3_field, geometry.repair_field):
        if name is not None and by_name[name].type is not FieldType.STRING:
            raise DatasetDefinitionError(f"{where}: geometry companion {name!r} must be a string")
    if geometry.id_field is not None and by_name[geometry.id_field].type not in (
        FieldType.STRING,
        FieldType.INT64,
    ):
        raise DatasetDefinitionError(
            f"{where}: geometry.id_field {geometry.id_field!r} must be a string or int64"
        )


def _parse_definition(  # noqa: PLR0915 - one check after another, in reading order
    data: Mapping[str, Any], regions: RegionRegistry
) -> DatasetDefinition:
    if not isinstance(data, Mapping):
        raise DatasetDefinitionError("a dataset definition must be a mapping")
    dataset_id = _as_str(_require(data, "id", "dataset"), "id")
    if not _DATASET_ID.match(dataset_id) or len(dataset_id) > 120:
        raise DatasetDefinitionError(
            f"id: {dataset_id!r} must be dotted lower-case words, e.g. hk.traffic.speed"
        )
    where = f"dataset {dataset_id!r}"
    kind = _parse_enum(DatasetKind, _require(data, "kind", where), f"{where}: kind")
    owner = _as_str(_require(data, "owner_region", where), f"{where}: owner_region")
    if owner not in regions:
        raise DatasetDefinitionError(f"{where}: unknown owner_region {owner!r}")
    title = _require(data, "title", where)
    if isinstance(title, str):
        title = {"en": title}
    if not isinstance(title, Mapping) or not title:
        raise DatasetDefinitionError(f"{where}: title must be text or a mapping of languages")
    time_field = _as_str(_require(data, "time_field", where), f"{where}: time_field")
    keys = _require(data, "key_fields", where)
    if not isinstance(keys, Sequence) or isinstance(keys, str) or not keys:
        raise DatasetDefinitionError(f"{where}: key_fields must be a non-empty list")
    key_fields = tuple(_as_str(k, f"{where}: key_fields") for k in keys)
    raw_fields = _require(data, "fields", where)
    if not isinstance(raw_fields, Sequence) or isinstance(raw_fields, str) or not raw_fields:
        raise DatasetDefinitionError(f"{where}: fields must be a non-empty list")
    geometry_raw = data.get("geometry")
    always_required = {time_field, *key_fields}
    if isinstance(geometry_raw, Mapping) and "field" not in geometry_raw:
        always_required |= {str(geometry_raw.get("lat")), str(geometry_raw.get("lon"))}
    fields = tuple(_parse_field(raw, i, always_required) for i, raw in enumerate(raw_fields))
    names = [f.name for f in fields]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DatasetDefinitionError(f"{where}: duplicate fields {duplicates}")
    by_name = {f.name: f for f in fields}
    if time_field not in by_name:
        raise DatasetDefinitionError(f"{where}: time_field {time_field!r} is not a declared field")
    if by_name[time_field].type is not FieldType.TIMESTAMP:
        raise DatasetDefinitionError(f"{where}: time_field {time_field!r} must be a timestamp")
    for key in key_fields:
        if key not in by_name:
            raise DatasetDefinitionError(f"{where}: key field {key!r} is not a declared field")
    geometry = _parse_geometry(geometry_raw, set(names)) if geometry_raw is not None else None
    if isinstance(geometry, PointGeometry):
        for name in (geometry.lat, geometry.lon):
            if by_name[name].type is not FieldType.FLOAT64:
                raise DatasetDefinitionError(f"{where}: geometry field {name!r} must be float64")
    elif isinstance(geometry, FeatureGeometry):
        _check_feature_geometry(geometry, by_name, where)
    # A geometry value is only meaningful with a declared CRS: the one geometry field.
    declared = geometry.field if isinstance(geometry, FeatureGeometry) else None
    for spec in fields:
        if spec.type is FieldType.GEOMETRY and spec.name != declared:
            raise DatasetDefinitionError(
                f"{where}: field {spec.name!r} has type geometry but is not the dataset's "
                "geometry (geometry: {field: ..., crs: ...})"
            )
        if spec.type is FieldType.GEOMETRY and spec.name in key_fields:
            raise DatasetDefinitionError(f"{where}: geometry field {spec.name!r} cannot be a key")
    version = data.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise DatasetDefinitionError(f"{where}: version must be a positive whole number")
    partitions = data.get("partitions", 4)
    if (
        isinstance(partitions, bool)
        or not isinstance(partitions, int)
        or not 1 <= partitions <= MAX_PARTITIONS
    ):
        raise DatasetDefinitionError(f"{where}: partitions must be 1 to {MAX_PARTITIONS}")
    unknown = set(data) - {
        "id",
        "kind",
        "owner_region",
        "title",
        "time_field",
        "key_fields",
        "fields",
        "geometry",
        "version",
        "partitions",
        "description",
    }
    if unknown:
        raise DatasetDefinitionError(f"{where}: unknown keys {sorted(unknown)}")
    return DatasetDefinition(
        id=dataset_id,
        kind=kind,
        owner_region=owner,
        title={str(k): str(v) for k, v in title.items()},
        time_field=time_field,
        key_fields=key_fields,
        fields=fields,
        geometry=geometry if isinstance(geometry, PointGeometry) else None,
        feature_geometry=geometry if isinstance(geometry, FeatureGeometry) else None,
        version=version,
        partitions=partitions,
        description=str(data.get("description", "")),
    )
