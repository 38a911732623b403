"""Dataset definitions: the example from the issue parses, and every malformed one is named."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from domain.classification import Classification
from domain.dataset import DatasetDefinition, DatasetKind, FieldType, PointGeometry
from domain.errors import DatasetDefinitionError
from domain.region import Region, RegionRegistry

VEHICLE_POSITIONS_YAML = """\
id: hk.traffic.vehicle-positions
kind: traffic
owner_region: hk
title: {en: "Bus vehicle positions", zh-Hant: "巴士車輛位置", zh-Hans: "巴士车辆位置"}
time_field: observed_at
key_fields: [vehicle_id, observed_at]
geometry: {lat: lat, lon: lon, crs: "EPSG:4326"}
fields:
  - {name: vehicle_id, type: string, classification: public}
  - {name: observed_at, type: timestamp, classification: public}
  - {name: lat, type: float64, unit: degree, classification: public}
  - {name: lon, type: float64, unit: degree, classification: public}
  - {name: speed, type: float64, unit: m/s, classification: public}
  - {name: driver_id, type: string, classification: sensitive, personal: true}
"""


def vehicle_positions() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(VEHICLE_POSITIONS_YAML)
    return loaded


def with_field(data: dict[str, Any], field_name: str, /, **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    for spec in changed["fields"]:
        if spec["name"] == field_name:
            spec.update(changes)
    return changed


def test_the_bus_vehicle_positions_example_parses() -> None:
    definition = DatasetDefinition.from_dict(vehicle_positions())

    assert definition.id == "hk.traffic.vehicle-positions"
    assert definition.kind is DatasetKind.TRAFFIC
    assert definition.owner_region == "hk"
    assert definition.title == {
        "en": "Bus vehicle positions",
        "zh-Hant": "巴士車輛位置",
        "zh-Hans": "巴士车辆位置",
    }
    assert definition.time_field == "observed_at"
    assert definition.key_fields == ("vehicle_id", "observed_at")
    assert definition.geometry == PointGeometry(lat="lat", lon="lon", crs="EPSG:4326")
    assert definition.field_names == (
        "vehicle_id",
        "observed_at",
        "lat",
        "lon",
        "speed",
        "driver_id",
    )
    assert definition.field("observed_at").type is FieldType.TIMESTAMP
    assert definition.field("speed").unit == "m/s"
    assert definition.field("driver_id").personal is True
    assert definition.field("driver_id").classification is Classification.SENSITIVE
    assert definition.version == 1
    assert definition.partitions == 4
    assert definition.ingest_topic == "baylink.ingest.hk.traffic.vehicle-positions.v1"


def test_time_key_and_geometry_fields_are_required_and_the_rest_optional() -> None:
    definition = DatasetDefinition.from_dict(vehicle_positions())

    required = {f.name for f in definition.fields if f.required}

    assert required == {"vehicle_id", "observed_at", "lat", "lon"}


def test_a_definition_reads_back_from_its_own_dict() -> None:
    definition = DatasetDefinition.from_dict(vehicle_positions())

    assert DatasetDefinition.from_dict(definition.as_dict()) == definition


def test_dataset_is_as_protected_as_its_most_protected_field() -> None:
    definition = DatasetDefinition.from_dict(vehicle_positions())

    assert definition.classification is Classification.SENSITIVE


def test_dataset_whose_fields_are_all_public_is_public() -> None:
    data = with_field(vehicle_positions(), "driver_id", classification="public")

    assert DatasetDefinition.from_dict(data).classification is Classification.PUBLIC


_levels = st.sampled_from(list(Classification))


@given(st.lists(_levels, min_size=6, max_size=6))
def test_dataset_classification_is_the_maximum_of_its_fields(
    levels: list[Classification],
) -> None:
    data = vehicle_positions()
    for spec, level in zip(data["fields"], levels, strict=True):
        spec["classification"] = level.label

    definition = DatasetDefinition.from_dict(data)

    assert definition.classification is max(levels)
    assert [f.classification for f in definition.fields] == levels


def test_an_owner_region_added_to_the_registry_is_accepted() -> None:
    data = {**vehicle_positions(), "owner_region": "gd-shanwei"}
    regions = RegionRegistry.default().extended([Region("gd-shanwei", "CN", "Shanwei")])

    assert DatasetDefinition.from_dict(data, regions).owner_region == "gd-shanwei"
    with pytest.raises(DatasetDefinitionError, match="unknown owner_region 'gd-shanwei'"):
        DatasetDefinition.from_dict(data)


def test_a_plain_text_title_is_read_as_english() -> None:
    data = {**vehicle_positions(), "title": "Bus vehicle positions"}

    assert DatasetDefinition.from_dict(data).title == {"en": "Bus vehicle positions"}


def _without(key: str) -> dict[str, Any]:
    data = vehicle_positions()
    del data[key]
    return data


def _replaced(**changes: Any) -> dict[str, Any]:
    return {**vehicle_positions(), **changes}


def _with_extra_field(spec: dict[str, Any]) -> dict[str, Any]:
    data = vehicle_positions()
    data["fields"].append(spec)
    return data


MALFORMED: list[tuple[str, dict[str, Any], str]] = [
    ("missing id", _without("id"), "missing required key 'id'"),
    ("missing kind", _without("kind"), "missing required key 'kind'"),
    ("missing owner", _without("owner_region"), "missing required key 'owner_region'"),
    ("missing title", _without("title"), "missing required key 'title'"),
    ("missing time field", _without("time_field"), "missing required key 'time_field'"),
    ("missing keys", _without("key_fields"), "missing required key 'key_fields'"),
    ("missing fields", _without("fields"), "missing required key 'fields'"),
    ("id not dotted", _replaced(id="vehicle-positions"), "must be dotted lower-case words"),
    ("id upper case", _replaced(id="HK.Traffic.Buses"), "must be dotted lower-case words"),
    ("unknown kind", _replaced(kind="weather"), "'weather' is not one of traffic"),
    ("unknown owner region", _replaced(owner_region="tw"), "unknown owner_region 'tw'"),
    ("empty title", _replaced(title={}), "title must be text or a mapping"),
    (
        "time field not a timestamp",
        _replaced(time_field="vehicle_id"),
        "time_field 'vehicle_id' must be a timestamp",
    ),
    (
        "time field undeclared",
        _replaced(time_field="recorded_at"),
        "time_field 'recorded_at' is not a declared field",
    ),
    (
        "key field undeclared",
        _replaced(key_fields=["route_id", "observed_at"]),
        "key field 'route_id' is not a declared field",
    ),
    ("no key fields", _replaced(key_fields=[]), "key_fields must be a non-empty list"),
    ("key fields as text", _replaced(key_fields="vehicle_id"), "key_fields must be a non-empty"),
    ("no fields", _replaced(fields=[]), "fields must be a non-empty list"),
    (
        "duplicate field",
        _with_extra_field({"name": "speed", "type": "float64"}),
        "duplicate fields ['speed']",
    ),
    (
        "bad CRS",
        _replaced(geometry={"lat": "lat", "lon": "lon", "crs": "WGS84"}),
        "geometry.crs: 'WGS84' is not a CRS name",
    ),
    (
        "geometry names undeclared field",
        _replaced(geometry={"lat": "latitude", "lon": "lon"}),
        "geometry names field 'latitude', which is not declared",
    ),
    (
        "geometry field not float64",
        _replaced(geometry={"lat": "vehicle_id", "lon": "lon"}),
        "geometry field 'vehicle_id' must be float64",
    ),
    (
        "min above max",
        with_field(vehicle_positions(), "speed", min=50, max=10),
        "field 'speed': min 50.0 is above max 10.0",
    ),
    (
        "min not a number",
        with_field(vehicle_positions(), "speed", min="slow"),
        "field 'speed'.min: expected a number, got 'slow'",
    ),
    (
        "bounds on text",
        with_field(vehicle_positions(), "vehicle_id", max=10),
        "field 'vehicle_id': min/max only apply to numeric fields",
    ),
    (
        "unknown field type",
        with_field(vehicle_positions(), "speed", type="decimal"),
        "field 'speed'.type: 'decimal' is not one of",
    ),
    (
        "unknown classification",
        with_field(vehicle_positions(), "driver_id", classification="secret"),
        "field 'driver_id': unknown classification 'secret'",
    ),
    (
        "unknown key in a field",
        with_field(vehicle_positions(), "speed", format="km/h"),
        "field 'speed': unknown keys ['format']",
    ),
    (
        "field name not snake case",
        with_field(vehicle_positions(), "speed", name="Speed"),
        "fields[4].name: 'Speed' must be lower case",
    ),
    ("field without a type", _with_extra_field({"name": "heading"}), "missing required key 'type'"),
    ("unknown top-level key", _replaced(colour="red"), "unknown keys ['colour']"),
    ("version zero", _replaced(version=0), "version must be a positive whole number"),
    ("version as flag", _replaced(version=True), "version must be a positive whole number"),
    ("no partitions", _replaced(partitions=0), "partitions must be 1 to 64"),
    ("too many partitions", _replaced(partitions=65), "partitions must be 1 to 64"),
]


@pytest.mark.parametrize(
    ("data", "problem"),
    [pytest.param(data, problem, id=name) for name, data, problem in MALFORMED],
)
def test_a_malformed_definition_is_refused_with_its_problem_named(
    data: dict[str, Any], problem: str
) -> None:
    with pytest.raises(DatasetDefinitionError) as refused:
        DatasetDefinition.from_dict(data)

    assert problem in str(refused.value)


def test_a_definition_that_is_not_a_mapping_is_refused() -> None:
    not_a_mapping: Any = ["id", "kind"]

    with pytest.raises(DatasetDefinitionError, match="must be a mapping"):
        DatasetDefinition.from_dict(not_a_mapping)


def test_field_bounds_must_be_finite_numbers() -> None:
    """A NaN bound compares false with every value, so it would silently switch the check off."""
    data = with_field(vehicle_positions(), "speed", min=float("nan"))

    with pytest.raises(DatasetDefinitionError, match="speed"):
        DatasetDefinition.from_dict(data)


def test_asking_for_an_undeclared_field_names_it() -> None:
    definition = DatasetDefinition.from_dict(vehicle_positions())

    with pytest.raises(DatasetDefinitionError, match="has no field 'heading'"):
        definition.field("heading")
    assert not definition.has_field("heading")
    assert definition.has_field("speed")
