"""Rows become normalised records or rejections that say which field was wrong and why."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from domain.dataset import DatasetDefinition
from domain.record import RecordValidator, record_id_for, to_micros
from domain.region import RegionRegistry
from domain.rejection import RejectionReason

DATASET_DOCUMENT: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parents[2] / "fixtures" / "datasets" / "sensor-readings.yaml").read_text(
        encoding="utf-8"
    )
)
SENSOR_READINGS = DatasetDefinition.from_dict(DATASET_DOCUMENT)
# Positions without bounds on lat/lon, so the area check (not the range check) speaks.
VEHICLE_POSITIONS = DatasetDefinition.from_dict(
    {
        "id": "hk.traffic.vehicle-positions",
        "kind": "traffic",
        "owner_region": "hk",
        "title": "Bus vehicle positions",
        "time_field": "observed_at",
        "key_fields": ["vehicle_id", "observed_at"],
        "geometry": {"lat": "lat", "lon": "lon", "crs": "EPSG:4326"},
        "fields": [
            {"name": "vehicle_id", "type": "string"},
            {"name": "observed_at", "type": "timestamp"},
            {"name": "lat", "type": "float64"},
            {"name": "lon", "type": "float64"},
        ],
    }
)
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
REGION = "gd-shenzhen"


def reading(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "sensor_id": "sz-0042",
        "observed_at": "2025-06-01T19:55:00+08:00",
        "lat": 22.54,
        "lon": 114.06,
        "speed": 61.5,
        "volume": 12,
        "lane_closed": False,
        "operator_id": "op-7",
    }
    row.update(changes)
    return {name: value for name, value in row.items() if value is not _ABSENT}


_ABSENT = object()


def validator(dataset: DatasetDefinition = SENSOR_READINGS) -> RecordValidator:
    return RecordValidator(dataset, RegionRegistry.default())


def test_a_good_reading_is_normalised_to_utc_micros_in_field_order() -> None:
    batch = validator().validate([reading()], REGION, NOW)

    assert batch.rejected == []
    [record] = batch.accepted
    observed = to_micros(datetime(2025, 6, 1, 11, 55, tzinfo=UTC))
    assert record == [
        record_id_for(SENSOR_READINGS.id, ["sz-0042", observed], observed),
        REGION,
        "sz-0042",
        observed,
        22.54,
        114.06,
        61.5,
        12,
        False,
        "op-7",
    ]


def test_optional_fields_may_be_left_out_and_whole_numbers_pass_as_floats() -> None:
    row = reading(speed=60, volume=_ABSENT, lane_closed=_ABSENT, operator_id=None)

    [record] = validator().validate([row], REGION, NOW).accepted

    assert record[6] == 60.0
    assert isinstance(record[6], float)
    assert record[7:] == [None, None, None]


def test_a_record_may_name_its_own_region() -> None:
    [record] = validator().validate([reading(region="hk")], REGION, NOW).accepted

    assert record[1] == "hk"


REJECTIONS: list[tuple[str, object, RejectionReason, str]] = [
    ("text as speed", reading(speed="fast"), RejectionReason.WRONG_TYPE, "'speed'"),
    ("flag as speed", reading(speed=True), RejectionReason.WRONG_TYPE, "'speed'"),
    ("fraction as volume", reading(volume=1.5), RejectionReason.WRONG_TYPE, "'volume'"),
    ("text as volume", reading(volume="12"), RejectionReason.WRONG_TYPE, "'volume'"),
    ("text as flag", reading(lane_closed="yes"), RejectionReason.WRONG_TYPE, "'lane_closed'"),
    ("number as text", reading(sensor_id=42), RejectionReason.WRONG_TYPE, "'sensor_id'"),
    ("bad time", reading(observed_at="yesterday"), RejectionReason.WRONG_TYPE, "'observed_at'"),
    (
        "number as time",
        reading(observed_at=1_717_000_000),
        RejectionReason.WRONG_TYPE,
        "'observed_at'",
    ),
    ("key missing", reading(sensor_id=_ABSENT), RejectionReason.MISSING_FIELD, "'sensor_id'"),
    ("key null", reading(sensor_id=None), RejectionReason.MISSING_FIELD, "'sensor_id'"),
    ("time missing", reading(observed_at=_ABSENT), RejectionReason.MISSING_FIELD, "'observed_at'"),
    ("position missing", reading(lat=_ABSENT), RejectionReason.MISSING_FIELD, "'lat'"),
    ("unknown field", reading(colour="red"), RejectionReason.UNKNOWN_FIELD, "'colour'"),
    ("speed above max", reading(speed=300.5), RejectionReason.OUT_OF_RANGE, "'speed'"),
    ("volume below min", reading(volume=-1), RejectionReason.OUT_OF_RANGE, "'volume'"),
    ("volume over 64 bits", reading(volume=2**63), RejectionReason.OUT_OF_RANGE, "'volume'"),
    ("lat beyond the pole", reading(lat=90.5), RejectionReason.OUT_OF_RANGE, "'lat'"),
    ("overlong text", reading(sensor_id="x" * 65_537), RejectionReason.OUT_OF_RANGE, "'sensor_id'"),
    ("NaN speed", reading(speed=math.nan), RejectionReason.NOT_FINITE, "'speed'"),
    ("infinite speed", reading(speed=math.inf), RejectionReason.NOT_FINITE, "'speed'"),
    ("minus infinite lat", reading(lat=-math.inf), RejectionReason.NOT_FINITE, "'lat'"),
    (
        "from the future",
        reading(observed_at=(NOW + timedelta(minutes=6)).isoformat()),
        RejectionReason.FUTURE_TIMESTAMP,
        "observed_at",
    ),
    (
        "naive time text",
        reading(observed_at="2025-06-01T11:55:00"),
        RejectionReason.NAIVE_TIMESTAMP,
        "'observed_at'",
    ),
    (
        "naive datetime",
        reading(observed_at=datetime(2025, 6, 1, 11, 55)),
        RejectionReason.NAIVE_TIMESTAMP,
        "'observed_at'",
    ),
    ("unknown region", reading(region="tw"), RejectionReason.UNKNOWN_REGION, "region 'tw'"),
    ("not a mapping", ["sz-0042", 61.5], RejectionReason.INVALID_RECORD, "mapping of field names"),
    ("text row", "sz-0042,61.5", RejectionReason.INVALID_RECORD, "got str"),
    (
        "marked invalid upstream",
        {"__invalid__": "line 7: unterminated quote"},
        RejectionReason.INVALID_RECORD,
        "line 7: unterminated quote",
    ),
]


@pytest.mark.parametrize(
    ("row", "reason", "named"),
    [pytest.param(row, reason, named, id=name) for name, row, reason, named in REJECTIONS],
)
def test_a_bad_row_is_rejected_with_its_reason_and_the_offending_field_named(
    row: object, reason: RejectionReason, named: str
) -> None:
    batch = validator().validate([row], REGION, NOW)

    assert batch.accepted == []
    [rejection] = batch.rejected
    assert rejection.reason is reason
    assert named in rejection.message
    assert rejection.index == 0
    assert rejection.excerpt


def test_a_time_within_the_allowed_clock_skew_is_accepted() -> None:
    row = reading(observed_at=(NOW + timedelta(minutes=4)).isoformat())

    assert validator().validate([row], REGION, NOW).rejected == []


@pytest.mark.parametrize(("lat", "lon"), [(91.0, 114.0), (22.5, 180.5), (-90.1, 0.0)])
def test_a_position_outside_the_crs_area_is_rejected(lat: float, lon: float) -> None:
    row = {
        "vehicle_id": "bus-1",
        "observed_at": "2025-06-01T11:00:00+00:00",
        "lat": lat,
        "lon": lon,
    }

    [rejection] = validator(VEHICLE_POSITIONS).validate([row], "hk", NOW).rejected

    assert rejection.reason is RejectionReason.COORDINATES_OUT_OF_AREA
    assert f"({lon}, {lat})" in rejection.message
    assert "EPSG:4326" in rejection.message


def test_one_bad_row_never_affects_the_others() -> None:
    good = [reading(sensor_id=f"sz-{n}") for n in range(4)]
    rows: list[object] = [good[0], reading(speed="fast"), good[1], 17, good[2], good[3]]

    mixed = validator().validate(rows, REGION, NOW)
    alone = validator().validate(good, REGION, NOW)

    assert mixed.accepted == alone.accepted
    assert [(r.index, r.reason) for r in mixed.rejected] == [
        (1, RejectionReason.WRONG_TYPE),
        (3, RejectionReason.INVALID_RECORD),
    ]


def test_the_same_observation_always_gets_the_same_record_id() -> None:
    first = validator().validate([reading(speed=10.0)], REGION, NOW).accepted[0]
    again = validator().validate([reading(speed=99.0, volume=3)], "hk", NOW).accepted[0]

    assert first[0] == again[0]


def test_the_same_instant_in_another_time_zone_is_the_same_observation() -> None:
    moment = datetime(2025, 6, 1, 11, 55, tzinfo=UTC)
    in_hong_kong = moment.astimezone(timezone(timedelta(hours=8)))

    first = validator().validate([reading(observed_at=moment)], REGION, NOW).accepted[0]
    again = validator().validate([reading(observed_at=in_hong_kong)], REGION, NOW).accepted[0]

    assert first[0] == again[0]


def test_a_different_key_is_a_different_record() -> None:
    ids = {
        validator().validate([row], REGION, NOW).accepted[0][0]
        for row in [
            reading(),
            reading(sensor_id="sz-0043"),
            reading(observed_at="2025-06-01T19:55:01+08:00"),
        ]
    }

    assert len(ids) == 3


def test_record_ids_depend_on_the_dataset_and_the_key_values() -> None:
    assert record_id_for("hk.a.b", ["x", 1]) == record_id_for("hk.a.b", ["x", 1])
    assert record_id_for("hk.a.b", ["x", 1]) != record_id_for("hk.a.c", ["x", 1])
    assert record_id_for("hk.a.b", ["x", 1]) != record_id_for("hk.a.b", ["x", "1"])
    assert record_id_for("hk.a.b", ["x\x1f1"]) != record_id_for("hk.a.b", ["x", 1])
    assert len(record_id_for("hk.a.b", ["x"])) == 32


def test_record_ids_start_with_their_second_so_ids_of_one_moment_sort_together() -> None:
    second = 1_748_779_200_000_000
    ids = [
        record_id_for("hk.a.b", [sensor, moment], moment)
        for moment in (second, second + 999_999, second + 1_000_000, -1)
        for sensor in ("a", "b")
    ]

    assert ids[0][:10] == ids[1][:10] == ids[2][:10] == ids[3][:10]
    assert ids[0] != ids[1]
    assert ids[4][:10] > ids[0][:10] > ids[6][:10]  # a second later; before 1970
    assert record_id_for("hk.a.b", ["x"])[:10] == "0" * 10  # no time among the key fields
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_a_dataset_without_its_time_among_the_keys_has_no_time_in_its_ids() -> None:
    keyed_by_sensor = DatasetDefinition.from_dict({**DATASET_DOCUMENT, "key_fields": ["sensor_id"]})
    [record] = (
        RecordValidator(keyed_by_sensor, RegionRegistry.default())
        .validate([reading()], REGION, NOW)
        .accepted
    )

    assert str(record[0]).startswith("0" * 10)


@pytest.mark.parametrize("region", [["hk"], {"code": "hk"}])
def test_a_region_that_is_not_text_is_rejected_not_raised(region: object) -> None:
    batch = validator().validate([reading(region=region)], REGION, NOW)

    [rejection] = batch.rejected
    assert rejection.reason is RejectionReason.UNKNOWN_REGION


def test_a_whole_number_too_large_for_float64_is_rejected_not_raised() -> None:
    batch = validator().validate([reading(speed=10**400)], REGION, NOW)

    [rejection] = batch.rejected
    assert rejection.reason in {RejectionReason.OUT_OF_RANGE, RejectionReason.NOT_FINITE}
    assert "'speed'" in rejection.message


def test_a_row_holding_a_huge_whole_number_is_rejected_with_an_excerpt() -> None:
    """Python refuses to print ints over 4,300 digits; the rejection must not fail on that."""
    batch = validator().validate([reading(volume=10**5000)], REGION, NOW)

    [rejection] = batch.rejected
    assert rejection.reason is RejectionReason.OUT_OF_RANGE
    assert "'volume'" in rejection.message
    assert rejection.excerpt
