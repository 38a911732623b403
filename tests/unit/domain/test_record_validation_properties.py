"""Properties of validation over generated rows: valid rows pass, junk never raises."""

from __future__ import annotations

import decimal
import fractions
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import msgspec
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.dataset import DatasetDefinition, FieldSpec, FieldType
from domain.record import RecordValidator
from domain.region import RegionRegistry
from domain.rejection import RejectionReason

SENSOR_READINGS = DatasetDefinition.from_dict(
    yaml.safe_load(
        (Path(__file__).parents[2] / "fixtures" / "datasets" / "sensor-readings.yaml").read_text(
            encoding="utf-8"
        )
    )
)
REGIONS = RegionRegistry.default()
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
VALIDATOR = RecordValidator(SENSOR_READINGS, REGIONS)

_zones = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


def _values_of(spec: FieldSpec) -> st.SearchStrategy[Any]:
    low, high = spec.minimum, spec.maximum
    if spec.type is FieldType.STRING:
        return st.text(max_size=40)
    if spec.type is FieldType.INT64:
        return st.integers(
            min_value=-(2**63) if low is None else int(low),
            max_value=2**63 - 1 if high is None else int(high),
        )
    if spec.type is FieldType.FLOAT64:
        return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)
    if spec.type is FieldType.BOOL:
        return st.booleans()
    moments = st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(2025, 5, 30), timezones=_zones
    )
    return moments | moments.map(datetime.isoformat)


def _valid_rows(dataset: DatasetDefinition) -> st.SearchStrategy[dict[str, Any]]:
    required = {f.name: _values_of(f) for f in dataset.fields if f.required}
    optional = {f.name: st.none() | _values_of(f) for f in dataset.fields if not f.required}
    return st.fixed_dictionaries(
        required,
        optional={**optional, "region": st.sampled_from([r.code for r in REGIONS])},
    )


@settings(max_examples=200)
@given(st.lists(_valid_rows(SENSOR_READINGS), max_size=20))
def test_every_row_that_follows_the_schema_is_accepted(rows: list[dict[str, Any]]) -> None:
    batch = VALIDATOR.validate(rows, "gd-shenzhen", NOW)

    assert batch.rejected == []
    assert len(batch.accepted) == len(rows)


@given(_valid_rows(SENSOR_READINGS), _valid_rows(SENSOR_READINGS))
def test_record_ids_depend_only_on_the_key_fields(
    row: dict[str, Any], other: dict[str, Any]
) -> None:
    keys = SENSOR_READINGS.key_fields
    same_keys = {**other, **{k: row[k] for k in keys}}

    [first, second, third] = VALIDATOR.validate([row, same_keys, other], "hk", NOW).accepted

    assert first[0] == second[0]
    assert (first[0] == third[0]) == (first[2:4] == third[2:4])


_junk: st.SearchStrategy[object] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63 - 10, max_value=2**70),
    st.floats(),
    st.text(),
    st.binary(),
    st.datetimes(),
    st.datetimes(timezones=st.timezones() | _zones),
    st.dates(),
    st.times(),
    st.timedeltas(),
    st.decimals(),
    st.fractions(),
    st.complex_numbers(),
    st.uuids(),
    st.from_type(type),
    st.lists(st.integers() | st.text(), max_size=3),
    st.tuples(st.integers(), st.text()),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.sets(st.integers(), max_size=3),
    st.from_type(date),
    st.from_type(time),
    st.from_type(decimal.Decimal),
    st.from_type(fractions.Fraction),
    st.from_type(uuid.UUID),
)
_good_row = {
    "sensor_id": "sz-0042",
    "observed_at": "2025-06-01T19:55:00+08:00",
    "lat": 22.54,
    "lon": 114.06,
}
_targets = st.sampled_from([*SENSOR_READINGS.field_names, "region", "colour"])


@settings(max_examples=500)
@given(st.dictionaries(_targets, _junk, min_size=1, max_size=4))
def test_junk_in_any_field_is_accepted_or_rejected_never_raised(junk: dict[str, object]) -> None:
    batch = VALIDATOR.validate([{**_good_row, **junk}], "gd-shenzhen", NOW)

    assert len(batch.accepted) + len(batch.rejected) == 1
    for rejection in batch.rejected:
        assert isinstance(rejection.reason, RejectionReason)
        assert rejection.message


@given(st.lists(_junk, max_size=5))
def test_rows_that_are_not_mappings_are_rejected_as_invalid_records(rows: list[object]) -> None:
    not_mappings = [row for row in rows if not isinstance(row, dict)]

    batch = VALIDATOR.validate(not_mappings, "gd-shenzhen", NOW)

    assert batch.accepted == []
    assert [r.reason for r in batch.rejected] == [RejectionReason.INVALID_RECORD] * len(
        not_mappings
    )


@settings(max_examples=300)
@given(
    st.one_of(
        _valid_rows(SENSOR_READINGS),
        st.dictionaries(_targets, _junk, min_size=1, max_size=4).map(
            lambda junk: {**_good_row, **junk}
        ),
    )
)
def test_the_outcome_does_not_depend_on_the_kind_of_mapping_a_row_arrives_in(
    row: dict[str, Any],
) -> None:
    assert _outcome(row) == _outcome(MappingProxyType(row))


def _outcome(row: Mapping[str, Any]) -> object:
    """What validation made of one row; an exception counts too, so only divergence fails."""
    try:
        batch = VALIDATOR.validate([row], "gd-shenzhen", NOW)
    except Exception as error:  # compared, not swallowed
        return ("raised", type(error).__name__)
    return (batch.accepted, [(r.reason, r.message) for r in batch.rejected])


# --- the typed quick path agrees with the general rules ----------------------------------

_encoder = msgspec.msgpack.Encoder()
_plain_decoder = msgspec.msgpack.Decoder()


def _payload(rows: list[Any]) -> bytes:
    try:
        return _encoder.encode(rows)
    except (TypeError, OverflowError, msgspec.EncodeError):
        assume(False)  # not something msgpack can carry, so never on the wire
        raise


@settings(max_examples=200)
@given(st.lists(_valid_rows(SENSOR_READINGS), max_size=20))
def test_a_batch_that_follows_the_schema_takes_the_typed_path(rows: list[dict[str, Any]]) -> None:
    payload = _payload(rows)

    typed = VALIDATOR.validate_payload(payload, "gd-shenzhen", NOW)

    assert typed is not None
    assert (
        typed.accepted
        == VALIDATOR.validate(_plain_decoder.decode(payload), "gd-shenzhen", NOW).accepted
    )


@settings(max_examples=500)
@given(
    st.lists(
        st.one_of(
            _valid_rows(SENSOR_READINGS),
            st.dictionaries(_targets, _junk, min_size=1, max_size=4).map(
                lambda junk: {**_good_row, **junk}
            ),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_the_typed_path_accepts_only_what_the_general_rules_accept_unchanged(
    rows: list[dict[str, Any]],
) -> None:
    payload = _payload(rows)

    typed = VALIDATOR.validate_payload(payload, "gd-shenzhen", NOW)
    general = VALIDATOR.validate(_plain_decoder.decode(payload), "gd-shenzhen", NOW)

    # None is always allowed: the general rules then decide (an int given as 3.0, say).
    if typed is not None:
        assert general.rejected == []
        assert typed.accepted == general.accepted


def test_the_typed_path_declines_rows_with_an_unknown_region_or_a_future_time() -> None:
    future = {**_good_row, "observed_at": (NOW + timedelta(hours=1)).isoformat()}
    elsewhere = {**_good_row, "region": "tw"}

    assert VALIDATOR.validate_payload(_payload([_good_row]), "hk", NOW) is not None
    assert VALIDATOR.validate_payload(_payload([_good_row, future]), "hk", NOW) is None
    assert VALIDATOR.validate_payload(_payload([elsewhere]), "hk", NOW) is None
    assert VALIDATOR.validate_payload(b"\xc1", "hk", NOW) is None  # not msgpack at all


MIXED_ORDER = DatasetDefinition.from_dict(
    {
        "id": "hk.economic.mixed-order",
        "kind": "economic",
        "owner_region": "hk",
        "title": {"en": "Optional fields before required ones"},
        "time_field": "period",
        "key_fields": ["series", "period"],
        "fields": [
            {"name": "note", "type": "string", "classification": "public"},
            {"name": "series", "type": "string", "classification": "public", "required": True},
            {"name": "flag", "type": "bool", "classification": "public"},
            {"name": "period", "type": "timestamp", "classification": "public", "required": True},
            {"name": "value", "type": "float64", "classification": "public", "min": -1e9},
            {"name": "count", "type": "int64", "classification": "public", "max": 10.5},
        ],
    }
)


@settings(max_examples=200)
@given(st.lists(_valid_rows(MIXED_ORDER), min_size=1, max_size=10))
def test_typed_rows_keep_the_field_order_whatever_is_required(rows: list[dict[str, Any]]) -> None:
    validator = RecordValidator(MIXED_ORDER, REGIONS)
    payload = _payload(rows)

    typed = validator.validate_payload(payload, "hk", NOW)

    assert typed is not None
    assert typed.accepted == validator.validate(_plain_decoder.decode(payload), "hk", NOW).accepted


SEVERAL_TIMES = DatasetDefinition.from_dict(
    {
        "id": "hk.traffic.several-times",
        "kind": "traffic",
        "owner_region": "hk",
        "title": {"en": "Records with several timestamps, one of them a key"},
        "time_field": "observed_at",
        "key_fields": ["trip", "scheduled_at", "observed_at"],
        "fields": [
            {"name": "trip", "type": "string", "required": True},
            {"name": "scheduled_at", "type": "timestamp", "required": True},
            {"name": "observed_at", "type": "timestamp", "required": True},
            {"name": "departed_at", "type": "timestamp"},
            {"name": "delay", "type": "int64"},
        ],
    }
)


@settings(max_examples=300)
@given(st.lists(_valid_rows(SEVERAL_TIMES), min_size=1, max_size=10))
def test_every_timestamp_field_is_stored_alike_on_either_path(rows: list[dict[str, Any]]) -> None:
    validator = RecordValidator(SEVERAL_TIMES, REGIONS)
    payload = _payload(rows)

    typed = validator.validate_payload(payload, "hk", NOW)

    assert typed is not None
    general = validator.validate(_plain_decoder.decode(payload), "hk", NOW)
    assert typed.accepted == general.accepted
    for record in typed.accepted:
        assert all(isinstance(v, int) for v in record[3:6] if v is not None)
