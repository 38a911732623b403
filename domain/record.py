"""Turning raw rows into accepted, normalised records, or rejections that say why.

A normalised record is a list: ``[record_id, region, value_1, ..., value_n]`` with the values
in the dataset's field order, timestamps as whole microseconds since the epoch (UTC) and
coordinates in WGS-84.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from operator import itemgetter
from typing import Any, cast

import msgspec
from msgspec import UNSET
from msgspec.structs import astuple

from domain.dataset import DatasetDefinition, FieldSpec, FieldType
from domain.errors import DomainError
from domain.geo import WGS84, CoordinateNormaliser, Wgs84Only
from domain.geometry import (
    GeometryInspector,
    InvalidGeometryError,
    canonical_geometry,
    inspected,
)
from domain.region import RegionRegistry
from domain.rejection import RejectedRecord, RejectionReason, excerpt_of
from domain.typed_rows import INT64_MAX, INT64_MIN, MAX_STRING_LENGTH, row_decoder

SYSTEM_COLUMNS = ("record_id", "region")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KEY_SEPARATOR = "\x1f"
# Key values (normalised: text, whole numbers, floats, booleans, None) are hashed as a msgpack
# array, which keeps every type and boundary apart ("1" from 1, 1 from 1.0, ["a", "b"] from
# ["a\x1fb"]) and is a single C call.
_key_encoder = msgspec.msgpack.Encoder()
# Record ids are 32 hex digits: 10 of time prefix (40 bits of seconds, offset so that times
# before 1970 stay positive) and 22 of SHA-256 (88 bits: no collision within one second).
_PREFIX_OFFSET = 2**39
_PREFIX_MASK = 2**40 - 1
_NO_TIME_PREFIX = "0" * 10
_HASH_HEX_DIGITS = 22

NormalisedRecord = list[object]


class RecordRejectedError(DomainError):
    """Carries one reason a record is rejected; caught inside the validator."""

    def __init__(self, reason: RejectionReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def to_micros(moment: datetime) -> int:
    """Whole microseconds since the epoch; exact, unlike float seconds."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def time_prefix(moment: int | None) -> str:
    """The first 10 hex digits of a record id: the whole second of the record's time.

    Ids of records observed close together sort close together, so the store's record index
    (keyed by id) takes new rows at a few hot places instead of all over a B-tree that outgrows
    its cache: inserts stay near constant cost as the index grows. A dataset whose time field
    is not a key field has no time in its ids (prefix 0), since the same record could then
    arrive with another time.
    """
    if moment is None:
        return _NO_TIME_PREFIX
    second = (moment // 1_000_000 + _PREFIX_OFFSET) & _PREFIX_MASK
    return f"{second:010x}"


def record_id_for(dataset_id: str, key_values: Sequence[object], moment: int | None = None) -> str:
    """The same observation (dataset and key values) always gets the same id.

    ``moment`` is the record's time in microseconds when the time field is one of the key
    fields (and so part of what makes the record the same), else None.
    """
    key = (dataset_id + _KEY_SEPARATOR).encode() + _key_encoder.encode(tuple(key_values))
    return time_prefix(moment) + hashlib.sha256(key).hexdigest()[:_HASH_HEX_DIGITS]


def _check_string(spec: FieldSpec, value: object) -> object:
    if not isinstance(value, str):
        raise RecordRejectedError(
            RejectionReason.WRONG_TYPE,
            f"field {spec.name!r} must be text, got {type(value).__name__} {excerpt_of(value)}",
        )
    if len(value) > MAX_STRING_LENGTH:
        raise RecordRejectedError(
            RejectionReason.OUT_OF_RANGE,
            f"field {spec.name!r} is {len(value)} characters long, over {MAX_STRING_LENGTH}",
        )
    return value


def _check_range(spec: FieldSpec, value: float) -> None:
    if spec.minimum is not None and value < spec.minimum:
        raise RecordRejectedError(
            RejectionReason.OUT_OF_RANGE,
            f"field {spec.name!r} is {value}, below its minimum {spec.minimum}",
        )
    if spec.maximum is not None and value > spec.maximum:
        raise RecordRejectedError(
            RejectionReason.OUT_OF_RANGE,
            f"field {spec.name!r} is {value}, above its maximum {spec.maximum}",
        )


def _check_int(spec: FieldSpec, value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise RecordRejectedError(
                RejectionReason.WRONG_TYPE,
                f"field {spec.name!r} must be a whole number, got {excerpt_of(value)}",
            )
    if not INT64_MIN <= value <= INT64_MAX:
        raise RecordRejectedError(
            RejectionReason.OUT_OF_RANGE, f"field {spec.name!r} does not fit in 64 bits"
        )
    _check_range(spec, value)
    return value


def _check_float(spec: FieldSpec, value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, float | int):
        raise RecordRejectedError(
            RejectionReason.WRONG_TYPE,
            f"field {spec.name!r} must be a number, got {excerpt_of(value)}",
        )
    try:
        number = float(value)
    except OverflowError:
        raise RecordRejectedError(
            RejectionReason.OUT_OF_RANGE, f"field {spec.name!r} does not fit in a 64-bit float"
        ) from None
    if not math.isfinite(number):
        raise RecordRejectedError(
            RejectionReason.NOT_FINITE, f"field {spec.name!r} is {number}, not a finite number"
        )
    _check_range(spec, number)
    return number


def _check_bool(spec: FieldSpec, value: object) -> object:
    if not isinstance(value, bool):
        raise RecordRejectedError(
            RejectionReason.WRONG_TYPE,
            f"field {spec.name!r} must be true or false, got {excerpt_of(value)}",
        )
    return value


def _check_timestamp(spec: FieldSpec, value: object) -> object:
    if isinstance(value, str):
        # RFC 3339, read by the same parser as typed batches (domain.typed_rows), so a time
        # given as text gets the same microseconds on either path.
        try:
            value = msgspec.convert(value, datetime)
        except msgspec.ValidationError:
            raise RecordRejectedError(
                RejectionReason.WRONG_TYPE,
                f"field {spec.name!r} is not an RFC 3339 time: {excerpt_of(value)}",
            ) from None
    if not isinstance(value, datetime):
        raise RecordRejectedError(
            RejectionReason.WRONG_TYPE,
            f"field {spec.name!r} must be a time, got {excerpt_of(value)}",
        )
    if value.utcoffset() is None:
        raise RecordRejectedError(
            RejectionReason.NAIVE_TIMESTAMP,
            f"field {spec.name!r} has no time zone: {value.isoformat()}",
        )
    return to_micros(value)


def _check_geometry(
    spec: FieldSpec, value: object, check: Callable[[object], object] = canonical_geometry
) -> object:
    try:
        return check(value)
    except InvalidGeometryError as error:
        raise RecordRejectedError(error.reason, f"field {spec.name!r}: {error.message}") from None


_CHECKS: dict[FieldType, Callable[[FieldSpec, object], object]] = {
    FieldType.STRING: _check_string,
    FieldType.INT64: _check_int,
    FieldType.FLOAT64: _check_float,
    FieldType.BOOL: _check_bool,
    FieldType.TIMESTAMP: _check_timestamp,
    FieldType.GEOMETRY: _check_geometry,
}

# What the validator's fast path does per field type. Each step is
# (name, kind, low, high, spec, check): the fast path accepts a value of the kind's exact type
# within [low, high] (finite bounds, so NaN and infinities fall through) and hands every other
# value to ``check``, the general rule that also raises the rejection.
_FAST_STRING, _FAST_INT, _FAST_FLOAT, _FAST_BOOL, _FAST_TIMESTAMP, _FAST_NONE = (
    "string",
    "int64",
    "float64",
    "bool",
    "timestamp",
    "none",
)
_FAST_KINDS = {
    FieldType.STRING: _FAST_STRING,
    FieldType.INT64: _FAST_INT,
    FieldType.FLOAT64: _FAST_FLOAT,
    FieldType.BOOL: _FAST_BOOL,
    FieldType.TIMESTAMP: _FAST_TIMESTAMP,
}
_FLOAT_MAX = sys.float_info.max
_FastStep = tuple[str, str, float, float, FieldSpec, Callable[[FieldSpec, object], object]]


def _quickest_sha256() -> Callable[[bytes], Any]:
    """CPython's own SHA-256 if it has one: the same digest as OpenSSL's, but about twice as
    quick for inputs this short (an OpenSSL hash object is costly to set up)."""
    for module in ("_sha2", "_sha256"):  # Python 3.12+, 3.11
        try:
            return cast(Callable[[bytes], Any], importlib.import_module(module).sha256)
        except (ImportError, AttributeError):
            continue
    return hashlib.sha256


_sha256 = _quickest_sha256()
_ABSENT = object()


def _plain_bound(bound: object) -> bool:
    return bound is None or type(bound) is int or (type(bound) is float and not math.isnan(bound))


def _fast_step(spec: FieldSpec, check: Callable[[FieldSpec, object], object]) -> _FastStep:
    """Bounds inside the finite floats, so a value within them is finite and within the field's."""
    minimum, maximum = spec.minimum, spec.maximum
    if not (_plain_bound(minimum) and _plain_bound(maximum)):
        # NaN never rejects in the general rule, and other types compare in their own way:
        # keep such a field on the general rule.
        return (spec.name, _FAST_NONE, 0.0, 0.0, spec, check)
    low = -_FLOAT_MAX if minimum is None else max(minimum, -_FLOAT_MAX)
    high = _FLOAT_MAX if maximum is None else min(maximum, _FLOAT_MAX)
    return (spec.name, _FAST_KINDS.get(spec.type, _FAST_NONE), low, high, spec, check)


def _key_getter(positions: list[int]) -> Callable[[list[object]], tuple[object, ...]]:
    """The values at ``positions``, always as a tuple (itemgetter of one gives the value)."""
    if len(positions) > 1:
        return cast(Callable[[list[object]], tuple[object, ...]], itemgetter(*positions))
    return lambda values: tuple(values[i] for i in positions)


@dataclass(frozen=True)
class ValidatedBatch:
    """What became of one batch of rows: accepted records and rejections, in input order."""

    accepted: list[NormalisedRecord]
    rejected: list[RejectedRecord]


@dataclass
class RecordValidator:
    """Validates and normalises rows against one dataset's schema."""

    dataset: DatasetDefinition
    regions: RegionRegistry
    normaliser: CoordinateNormaliser = field(default_factory=Wgs84Only)
    max_clock_skew: timedelta = timedelta(minutes=5)
    # Topology needs a geometry engine, which the domain does not hold; without an inspector
    # only the structure of geometry values is checked.
    geometry_inspector: GeometryInspector | None = None

    def __post_init__(self) -> None:
        self._fields = [(spec.name, spec, self._check_of(spec)) for spec in self.dataset.fields]
        self._known = {*self.dataset.field_names, "region"}
        names = self.dataset.field_names
        self._key_positions = [names.index(k) for k in self.dataset.key_fields]
        self._time_position = names.index(self.dataset.time_field)
        self._time_is_key = self._time_position in self._key_positions
        geometry = self.dataset.geometry
        self._geo: tuple[int, int, str, tuple[float, float, float, float]] | None = None
        if geometry is not None:
            self._geo = (
                names.index(geometry.lon),
                names.index(geometry.lat),
                geometry.crs,
                self.normaliser.bounds(geometry.crs),
            )
        self._plan: list[_FastStep] | None = [
            _fast_step(spec, check) for _, spec, check in self._fields
        ]
        if {"__invalid__", "region"} & set(names):
            self._plan = None  # names with a meaning of their own: only the general rules
        # The fast path reads the registry's mapping directly, which is what
        # RegionRegistry.__contains__ does; a subclass may answer differently, so it is not.
        self._region_codes: Mapping[str, object] | None = (
            self.regions.regions if type(self.regions) is RegionRegistry else None
        )
        self._id_head = (self.dataset.id + _KEY_SEPARATOR).encode()
        self._key_of = _key_getter(self._key_positions)
        self._record_key_of = _key_getter([len(SYSTEM_COLUMNS) + i for i in self._key_positions])
        self._area: tuple[int, int, float, float, float, float] | None = None
        if self._geo is not None:
            x_at, y_at, _, (min_x, min_y, max_x, max_y) = self._geo
            self._area = (x_at, y_at, min_x, min_y, max_x, max_y)
        # Timestamps other than the time field: the quick path converts them too.
        self._other_times = [
            len(SYSTEM_COLUMNS) + i
            for i, spec in enumerate(self.dataset.fields)
            if spec.type is FieldType.TIMESTAMP and i != self._time_position
        ]
        self._row_decoder = (
            row_decoder(self.dataset)
            if self._plan is not None and self._region_codes is not None
            else None
        )

    def _check_of(self, spec: FieldSpec) -> Callable[[FieldSpec, object], object]:
        if spec.type is FieldType.GEOMETRY and self.geometry_inspector is not None:
            return partial(_check_geometry, check=inspected(self.geometry_inspector))
        return _CHECKS[spec.type]

    def validate_payload(
        self, payload: bytes, default_region: str, now: datetime
    ) -> ValidatedBatch | None:
        """The quick path for a well-formed batch (a msgpack array of rows): decoded straight
        into the dataset's typed rows and normalised, all accepted. None when any row needs
        the general rules (a wrong type, an unknown region, ...): then decode the batch as it
        is and call ``validate``, which gives every rejection its reason.
        """
        decoder, regions = self._row_decoder, self._region_codes
        if decoder is None or regions is None:
            return None
        try:
            rows = decoder.decode(payload)
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
            return None
        latest = to_micros(now + self.max_clock_skew)
        offset = len(SYSTEM_COLUMNS)  # positions below are in the record, after id and region
        time_at, time_is_key = offset + self._time_position, self._time_is_key
        area = self._area
        if area is not None:
            area = (offset + area[0], offset + area[1], *area[2:])
        id_head, key_of, encode = self._id_head, self._record_key_of, _key_encoder.encode
        other_times = self._other_times
        last_second, prefix = None, _NO_TIME_PREFIX
        # Rows of a batch often share their time (one feed snapshot): convert each once.
        last_time, last_micros = None, 0
        accepted: list[NormalisedRecord] = []
        append = accepted.append
        for row in rows:
            # The record itself: [record_id, region, *values], filled in place.
            record: list[Any] = [None, None, *astuple(row)]
            region = record.pop()
            if region is UNSET:
                region = default_region
            if region not in regions:
                return None
            record[1] = region
            moment = record[time_at]
            if moment is not None:
                if moment != last_time:
                    last_time, last_micros = moment, to_micros(moment)
                moment = last_micros
                if moment > latest:
                    return None
                record[time_at] = moment
            for at in other_times:
                other = record[at]
                if other is not None:
                    delta = other - _EPOCH
                    record[at] = (
                        delta.days * 86_400 + delta.seconds
                    ) * 1_000_000 + delta.microseconds
            if area is not None:
                x, y = record[area[0]], record[area[1]]
                if (
                    x is not None
                    and y is not None
                    and not (area[2] <= x <= area[4] and area[3] <= y <= area[5])
                ):
                    return None
            if time_is_key and moment is not None:
                second = moment // 1_000_000
                if second != last_second:
                    last_second, prefix = second, time_prefix(moment)
            else:
                last_second, prefix = None, _NO_TIME_PREFIX
            digest = _sha256(id_head + encode(key_of(record))).hexdigest()
            record[0] = prefix + digest[:_HASH_HEX_DIGITS]
            append(record)
        if self._geo is not None and self._geo[2] != WGS84 and accepted:
            self._to_wgs84(accepted)
        return ValidatedBatch(accepted, [])

    def validate(
        self, rows: Sequence[object], default_region: str, now: datetime
    ) -> ValidatedBatch:
        """Check every row; one bad row never affects another."""
        latest = to_micros(now + self.max_clock_skew)
        accepted: list[NormalisedRecord] = []
        rejected: list[RejectedRecord] = []
        for index, row in enumerate(rows):
            try:
                accepted.append(self._normalise(row, default_region, latest))
            except RecordRejectedError as problem:
                rejected.append(
                    RejectedRecord(index, problem.reason, problem.message, None, excerpt_of(row))
                )
        if self._geo is not None and self._geo[2] != WGS84 and accepted:
            self._to_wgs84(accepted)
        return ValidatedBatch(accepted, rejected)

    def _normalise(  # noqa: PLR0915 - one inlined loop: the hot path of ingestion
        self, row: object, default_region: str, latest: int
    ) -> NormalisedRecord:
        """The common case, inlined: a plain dict whose values have their field's exact type.

        Optimistic: whenever anything is off (another mapping, an unknown or missing field, a
        value of another type or out of range, any exception at all), the row is handed to
        ``_normalise_general``, the rule-by-rule path, so every rejection is raised by the same
        code, in the same order and with the same message as before.
        """
        plan = self._plan
        regions = self._region_codes
        if plan is None or regions is None or type(row) is not dict:
            return self._normalise_general(row, default_region, latest)
        try:
            region = row.get("region", _ABSENT)
            seen = len(plan)
            if region is _ABSENT:
                region = default_region
            else:
                seen += 1
            if type(region) is not str or region not in regions:
                return self._normalise_general(row, default_region, latest)
            values: list[object] = []
            append = values.append
            get = row.get
            for name, kind, low, high, spec, check in plan:
                value = get(name)
                if value is None:
                    seen -= 1
                    if spec.required:
                        return self._normalise_general(row, default_region, latest)
                    append(None)
                elif kind is _FAST_FLOAT:
                    # low/high are finite, so NaN and infinities fail here and go to the check.
                    if type(value) is float and low <= value <= high:
                        append(value)
                    else:
                        append(check(spec, value))
                elif kind is _FAST_STRING:
                    if type(value) is str and len(value) <= MAX_STRING_LENGTH:
                        append(value)
                    else:
                        append(check(spec, value))
                elif kind is _FAST_TIMESTAMP:
                    if type(value) is datetime and (
                        value.tzinfo is UTC or value.utcoffset() is not None
                    ):
                        delta = value - _EPOCH
                        append(
                            (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
                        )
                    else:
                        append(check(spec, value))
                elif kind is _FAST_INT:
                    if (
                        type(value) is int
                        and INT64_MIN <= value <= INT64_MAX
                        and low <= value <= high
                    ):
                        append(value)
                    else:
                        append(check(spec, value))
                elif kind is _FAST_BOOL and type(value) is bool:
                    append(value)
                else:
                    append(check(spec, value))
            # Every key was one of the dataset's fields or "region", unless the counts differ
            # (a key with the value None, an unknown key, "__invalid__").
            if seen != len(row) and not (row.keys() <= self._known and "__invalid__" not in row):
                return self._normalise_general(row, default_region, latest)
            moment = values[self._time_position]
            if isinstance(moment, int) and moment > latest:
                return self._normalise_general(row, default_region, latest)
            area = self._area
            if area is not None:
                x, y = values[area[0]], values[area[1]]
                if (
                    type(x) is float
                    and type(y) is float
                    and not (area[2] <= x <= area[4] and area[3] <= y <= area[5])
                ):
                    return self._normalise_general(row, default_region, latest)
            digest = _sha256(self._id_head + _key_encoder.encode(self._key_of(values)))
            record_id = self._time_prefix_of(moment) + digest.hexdigest()[:_HASH_HEX_DIGITS]
        except Exception:
            return self._normalise_general(row, default_region, latest)
        return [record_id, region, *values]

    def _time_prefix_of(self, moment: object) -> str:
        return time_prefix(moment if self._time_is_key and isinstance(moment, int) else None)

    def _normalise_general(self, row: object, default_region: str, latest: int) -> NormalisedRecord:
        if not isinstance(row, Mapping):
            raise RecordRejectedError(
                RejectionReason.INVALID_RECORD,
                f"a record must be a mapping of field names, got {type(row).__name__}",
            )
        if "__invalid__" in row:
            raise RecordRejectedError(RejectionReason.INVALID_RECORD, str(row["__invalid__"]))
        unknown = [name for name in row if name not in self._known]
        if unknown:
            raise RecordRejectedError(
                RejectionReason.UNKNOWN_FIELD,
                f"unknown fields {sorted(map(str, unknown))} for dataset {self.dataset.id!r}",
            )
        region = row.get("region", default_region)
        if region not in self.regions:
            raise RecordRejectedError(RejectionReason.UNKNOWN_REGION, f"unknown region {region!r}")
        values: list[object] = []
        for name, spec, check in self._fields:
            value = row.get(name)
            if value is None:
                if spec.required:
                    raise RecordRejectedError(
                        RejectionReason.MISSING_FIELD, f"required field {name!r} is missing"
                    )
                values.append(None)
            else:
                values.append(check(spec, value))
        moment = values[self._time_position]
        if isinstance(moment, int) and moment > latest:
            raise RecordRejectedError(
                RejectionReason.FUTURE_TIMESTAMP,
                f"{self.dataset.time_field} {from_micros(moment).isoformat()} is further in "
                f"the future than the allowed clock skew of {self.max_clock_skew}",
            )
        if self._geo is not None:
            self._check_area(values)
        record_id = record_id_for(
            self.dataset.id,
            [values[i] for i in self._key_positions],
            moment if self._time_is_key and isinstance(moment, int) else None,
        )
        return [record_id, region, *values]

    def _check_area(self, values: list[object]) -> None:
        assert self._geo is not None
        x_at, y_at, crs, (min_x, min_y, max_x, max_y) = self._geo
        x, y = values[x_at], values[y_at]
        if not (isinstance(x, float) and isinstance(y, float)):
            return
        if not (min_x <= x <= max_x and min_y <= y <= max_y):
            raise RecordRejectedError(
                RejectionReason.COORDINATES_OUT_OF_AREA,
                f"point ({x}, {y}) lies outside the valid area of {crs} "
                f"({min_x}, {min_y}, {max_x}, {max_y})",
            )

    def _to_wgs84(self, records: list[NormalisedRecord]) -> None:
        assert self._geo is not None
        x_at, y_at, crs, _ = self._geo
        offset = len(SYSTEM_COLUMNS)
        present = [r for r in records if r[offset + x_at] is not None]
        xs = [cast(float, r[offset + x_at]) for r in present]
        ys = [cast(float, r[offset + y_at]) for r in present]
        lons, lats = self.normaliser.to_wgs84(crs, xs, ys)
        for record, lon, lat in zip(present, lons, lats, strict=True):
            record[offset + x_at] = lon
            record[offset + y_at] = lat
