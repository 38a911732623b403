"""SDMX observations, as sdmx1 read them, turned into rows of the sdmx-observations dataset.

One row per observation: structure, series key and dimensions, time period and the UTC
instant it starts, value, unit, unit multiplier, decimals, observation status, every
attribute, and the area, mapped to a baylink region where it names one. An observation that
cannot be turned into a row becomes an invalid row naming it.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sdmx.model import common

from connectors.areas import area_in, region_of_area
from connectors.payload import INVALID_KEY, REGION_KEY
from connectors.sdmx_period import period_start
from connectors.sdmx_quiet import describe_error
from domain.dataset import DatasetDefinition

_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_DECIMAL_COMMA = re.compile(r"[+-]?[0-9]+,[0-9]+", re.ASCII)
_MISSING = frozenset({"", "nan", "na", "n/a", "-", ".."})
_TIME_IDS = frozenset({"TIME_PERIOD", "TIME"})
_MAX_NOTED = 5


@dataclass
class SdmxRead:
    """A message as sdmx1 read it, and what the rows need to know beside it."""

    message: Any
    flavour: str
    structure_names: list[str]
    decimal_comma: bool = False
    notes: list[str] = field(default_factory=list)
    invalid: list[tuple[int, str]] = field(default_factory=list)
    deleted: int = 0  # of the invalid rows, those asking for a deletion


@dataclass
class _Tally:
    missing_values: int = 0
    text_values: int = 0
    unread_periods: list[str] = field(default_factory=list)
    no_period: int = 0
    deleted: int = 0
    regions: Counter[str] = field(default_factory=Counter)


def rows_of(read: SdmxRead) -> tuple[list[dict[str, object]], _Tally]:
    tally = _Tally(deleted=read.deleted)
    rows: list[dict[str, object]] = [{INVALID_KEY: reason} for _, reason in read.invalid]
    for ds, name in zip(read.message.data, read.structure_names, strict=False):
        deleting = getattr(ds, "action", None) is common.ActionType.delete
        ds_attributes = _attribute_texts(getattr(ds, "attrib", {}) or {})
        # What a series' observations share is worked out once per series.
        series_facts: dict[int, _Series] = {}
        for number, obs in enumerate(ds.obs, start=1):
            if deleting:
                tally.deleted += 1
                rows.append(
                    {
                        INVALID_KEY: f"observation {number} of a data set with action Delete: "
                        "deletions are not taken as records"
                    }
                )
                continue
            try:
                series_key = obs.series_key
                series = series_facts.get(id(series_key))
                if series is None:
                    series = series_facts[id(series_key)] = _series(series_key, ds_attributes)
                rows.append(_row(obs, name, series, read.decimal_comma, tally))
            except Exception as error:  # one unreadable observation never stops the rest
                rows.append(
                    {INVALID_KEY: f"observation {number} of {name}: {describe_error(error)}"}
                )
    return rows, tally


@dataclass(frozen=True, slots=True)
class _Series:
    """The period (if the series key holds it), dimensions and attributes of one series."""

    period: str | None
    dimensions: dict[str, str]
    attributes: dict[str, str]
    key: str
    dimensions_json: str


def _series(series_key: Any, ds_attributes: Mapping[str, str]) -> _Series:
    period: str | None = None
    dimensions: dict[str, str] = {}
    attributes = dict(ds_attributes)
    if series_key is not None:
        period = _split_key(series_key.values.values(), dimensions)
        attributes.update(_attribute_texts(series_key.attrib))
    return _Series(period, dimensions, attributes, ".".join(dimensions.values()), _json(dimensions))


def _split_key(key_values: Iterable[Any], dimensions: dict[str, str]) -> str | None:
    """Adds each dimension's code to ``dimensions``; returns the time period, if one is there."""
    period: str | None = None
    for kv in key_values:
        code = _text(kv.value)
        if period is None and _is_time(kv):
            period = code
        else:
            dimensions[str(kv.id)] = code
    return period


def _row(
    obs: Any, structure: str, series: _Series, decimal_comma: bool, tally: _Tally
) -> dict[str, object]:
    period, dimensions = series.period, series.dimensions
    series_key, dimensions_json = series.key, series.dimensions_json
    own = obs.dimension.values.values() if obs.dimension is not None else ()
    if own:
        dimensions = dict(dimensions)
        period = _split_key(own, dimensions) or period
        if len(dimensions) != len(series.dimensions):  # flat data: the key is at observation
            series_key, dimensions_json = ".".join(dimensions.values()), _json(dimensions)
    attributes = series.attributes
    groups = getattr(obs, "group_keys", None)
    if obs.attached_attribute or groups:
        attributes = dict(attributes)
        for group_key in groups or ():
            attributes.update(_attribute_texts(group_key.attrib))
        attributes.update(_attribute_texts(obs.attached_attribute))
    start: object = None
    if period is None:
        tally.no_period += 1
    else:
        start = period_start(period)
        if start is None:
            tally.unread_periods.append(period)
            start = period  # kept as given: the worker rejects it, naming the value
    value = _number(obs.value, decimal_comma)
    if value is None:
        tally.missing_values += 1
    elif isinstance(value, str):
        tally.text_values += 1
    area = area_in(dimensions)
    row: dict[str, object] = {
        "structure": structure,
        "series_key": series_key,
        "dimensions": dimensions_json,
        "time_period": period,
        "period_start": start,
        "value": value,
        "unit": attributes.get("UNIT_MEASURE") or attributes.get("UNIT"),
        "unit_mult": _whole(attributes.get("UNIT_MULT")),
        "decimals": _whole(attributes.get("DECIMALS")),
        "obs_status": attributes.get("OBS_STATUS"),
        "attributes": _json(attributes) if attributes else None,
        "area": area,
    }
    region = region_of_area(area) if area else None
    if region is not None:
        row[REGION_KEY] = region
        tally.regions[f"{area}→{region}"] += 1
    return row


def _is_time(kv: Any) -> bool:
    return isinstance(kv.value_for, common.TimeDimension) or str(kv.id) in _TIME_IDS


def _text(value: object) -> str:
    """A code, a plain value or sdmx1's list of values (SDMX-CSV ``ATTR[]``) as text."""
    if isinstance(value, common.Item):
        return str(value.id)
    if isinstance(value, list | tuple):
        return ";".join(text for text in map(_text, value) if text)
    if isinstance(value, common.InternationalString):
        return str(value.localized_default())
    return "" if value is None else str(value)


def _attribute_texts(attributes: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for attribute_id, attribute in attributes.items():
        value = getattr(attribute, "value", attribute)
        text = _text(value)
        if text:
            out[str(attribute_id)] = text
    return out


def _number(value: object, decimal_comma: bool) -> object:
    """The observation value as float64; None when missing (empty or NaN); else as given."""
    if value is None or isinstance(value, bool):
        return None if value is None else _text(value)
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            return str(value)
        return None if math.isnan(number) else number
    text = _text(value).strip()
    if text.lower() in _MISSING:
        return None
    if _NUMBER.fullmatch(text):
        return float(text)
    if decimal_comma and _DECIMAL_COMMA.fullmatch(text):
        return float(text.replace(",", "."))
    return text


def _whole(text: str | None) -> object:
    if text is None:
        return None
    stripped = text.strip()
    return int(stripped) if re.fullmatch(r"[+-]?[0-9]{1,18}", stripped, re.ASCII) else text


def _json(mapping: Mapping[str, str]) -> str:
    return json.dumps(mapping, ensure_ascii=False, separators=(",", ":"))


def notes_of(
    read: SdmxRead, rows: list[dict[str, object]], tally: _Tally, dataset: DatasetDefinition
) -> tuple[str, ...]:
    names = sorted(set(read.structure_names))
    notes = [f"read as {read.flavour}" + (f" (structure {', '.join(names)})" if names else "")]
    notes.extend(read.notes)
    invalid = sum(1 for row in rows if INVALID_KEY in row) - tally.deleted
    if invalid:
        notes.append(f"{invalid} observations could not be read and are passed on as invalid")
    if tally.deleted:
        notes.append(
            f"{tally.deleted} observations marked for deletion are passed on as invalid: "
            "deletions are not taken as records"
        )
    if tally.missing_values:
        notes.append(
            f"{tally.missing_values} observations have no value (empty or NaN) and are kept "
            "with value missing, beside their OBS_STATUS"
        )
    if tally.text_values:
        notes.append(f"{tally.text_values} values are not numbers and were kept as text")
    if tally.unread_periods:
        examples = ", ".join(repr(p) for p in dict.fromkeys(tally.unread_periods[:_MAX_NOTED]))
        notes.append(
            f"{len(tally.unread_periods)} time periods are not periods this reads "
            f"(e.g. {examples}); kept as given in period_start"
        )
    if tally.no_period:
        notes.append(f"{tally.no_period} observations have no time period")
    if tally.regions:
        mapped = ", ".join(f"{k} ({n})" for k, n in sorted(tally.regions.items()))
        notes.append(f"areas mapped to regions: {mapped}")
    expected = {*dataset.field_names, REGION_KEY, INVALID_KEY}
    unknown = sorted({k for row in rows for k in row} - expected)
    if unknown:
        notes.append(f"rows carry fields not in {dataset.id!r}: {unknown}")
    if not rows:
        notes.append("the payload holds no observations")
    return tuple(notes)
