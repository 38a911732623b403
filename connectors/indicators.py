"""Plain CSV indicator tables, long or wide, as rows of the ``indicator-observations`` dataset.

Long form has one observation a line (``indicator,area,period,value,unit``); wide form has
one column per period (``indicator,area,unit,2019,2020,2021``). Headers are matched without
regard to case and by common aliases (``time_period``, ``year``, ``ref_area``, ``geo``,
``obs_value``, ...). Periods and areas are read as in SDMX (connectors.sdmx_period and
connectors.areas). Columns that are none of these are kept, as JSON, in ``attributes``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from connectors.areas import region_of_area
from connectors.errors import PayloadError
from connectors.payload import INVALID_KEY, REGION_KEY, ParsedPayload
from connectors.sdmx_period import period_start
from domain.dataset import DatasetDefinition

NAME = "indicator-csv"
VERSION = "1"
# SDMX's code for "not allocated/unspecified" area, for tables that name no area at all.
UNSPECIFIED_AREA = "_X"

_BOM = "\ufeff"
_ALIASES: Mapping[str, tuple[str, ...]] = {
    "indicator": ("indicator", "indicator_code", "indicator_id", "series", "series_code"),
    "area": ("area", "ref_area", "area_code", "geo", "country", "country_code", "location"),
    "period": ("period", "time_period", "time", "year", "date", "quarter", "month"),
    "value": ("value", "obs_value", "observation"),
    "unit": ("unit", "unit_measure", "units"),
    "obs_status": ("obs_status", "status", "flag"),
}
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_THOUSANDS = re.compile(r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?", re.ASCII)
_MISSING = frozenset({"", "na", "n/a", "nan", "..", "-", "—"})
_DELIMITERS = ",;\t"


@dataclass
class _Layout:
    """Which column holds what: roles by index, and period columns (wide form)."""

    roles: dict[str, int]
    periods: list[tuple[int, str]]
    others: list[tuple[int, str]]


@dataclass
class _Tally:
    missing_values: int = 0
    text_values: int = 0
    blank_cells: int = 0
    unread_periods: list[str] = field(default_factory=list)
    regions: Counter[str] = field(default_factory=Counter)


def parse_indicator_csv(data: bytes, dataset: DatasetDefinition) -> ParsedPayload:
    """Rows, one per observation, from an indicator table in long or wide form."""
    text = _decode(data)
    delimiter = _delimiter(text.split("\n", maxsplit=1)[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    tally = _Tally()
    rows: list[dict[str, object]] = []
    try:
        header = next(reader, None)
        if header is None:
            raise PayloadError("empty-payload", "the table has no header row")
        layout = _layout(header)
        for cells in reader:
            if not cells:
                continue
            if len(cells) != len(header):
                rows.append(
                    {
                        INVALID_KEY: f"line {reader.line_num}: {len(cells)} cells but the "
                        f"header names {len(header)} columns"
                    }
                )
                continue
            rows.extend(_rows_of(cells, layout, tally))
    except csv.Error as error:
        raise PayloadError("not-csv", f"line {reader.line_num}: {error}") from None
    return ParsedPayload(rows=rows, format=NAME, notes=_notes(rows, layout, tally, dataset))


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8").removeprefix(_BOM)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise PayloadError(
            "bad-encoding", f"not UTF-8 at byte offset {error.start} (line {line})"
        ) from None
    if not text.strip():
        raise PayloadError("empty-payload", "the payload holds no data")
    return text


def _delimiter(first_line: str) -> str:
    """The most frequent of comma, semicolon and tab in the header line."""
    return max(_DELIMITERS, key=first_line.count)


def _layout(header: list[str]) -> _Layout:
    names = [column.strip().lower().removeprefix(_BOM) for column in header]
    roles: dict[str, int] = {}
    for role, aliases in _ALIASES.items():
        for alias in aliases:
            if alias in names:
                roles[role] = names.index(alias)
                break
    taken = set(roles.values())
    periods: list[tuple[int, str]] = []
    others: list[tuple[int, str]] = []
    for index, column in enumerate(header):
        if index in taken:
            continue
        label = column.strip()
        if "period" not in roles and period_start(label) is not None:
            periods.append((index, label))
        elif label:
            others.append((index, label))
    wide = bool(periods) and "value" not in roles
    if "indicator" not in roles or not (wide or {"period", "value"} <= roles.keys()):
        raise PayloadError(
            "missing-header",
            "line 1: an indicator table needs columns indicator, period and value (long "
            "form) or indicator and one column per period such as 2019 or 2020-Q1 (wide "
            f"form); this header has {header[:8]}",
        )
    return _Layout(roles, periods if wide else [], others + ([] if wide else periods))


def _rows_of(cells: list[str], layout: _Layout, tally: _Tally) -> list[dict[str, object]]:
    roles = layout.roles
    base: dict[str, object] = {
        "indicator": cells[roles["indicator"]].strip(),
        "area": cells[roles["area"]].strip() if "area" in roles else UNSPECIFIED_AREA,
        "unit": _optional(cells, roles.get("unit")),
        "obs_status": _optional(cells, roles.get("obs_status")),
    }
    attributes = {label: cells[i] for i, label in layout.others if cells[i] != ""}
    base["attributes"] = json.dumps(attributes, ensure_ascii=False) if attributes else None
    area = str(base["area"])
    region = region_of_area(area)
    if layout.periods:
        observations = []
        for index, label in layout.periods:
            if cells[index].strip() == "":
                tally.blank_cells += 1
                continue
            observations.append((label, cells[index]))
    else:
        observations = [(cells[roles["period"]].strip(), cells[roles["value"]])]
    out = []
    for period, raw in observations:
        start: object = period_start(period) if period else None
        if start is None and period:
            tally.unread_periods.append(period)
            start = period  # kept as given: the worker rejects it, naming the value
        value = _number(raw)
        if value is None:
            tally.missing_values += 1
        elif isinstance(value, str):
            tally.text_values += 1
        row = {**base, "time_period": period or None, "period_start": start, "value": value}
        if region is not None:
            row[REGION_KEY] = region
            tally.regions[f"{area}→{region}"] += 1
        out.append(row)
    return out


def _optional(cells: list[str], index: int | None) -> str | None:
    if index is None:
        return None
    return cells[index].strip() or None


def _number(cell: str) -> object:
    """float64; None for the usual ways of writing "no value"; the cell itself otherwise."""
    text = cell.strip()
    if text.lower() in _MISSING:
        return None
    if _NUMBER.fullmatch(text):
        return float(text)
    if _THOUSANDS.fullmatch(text):
        return float(text.replace(",", ""))
    return cell


def _notes(
    rows: list[dict[str, object]], layout: _Layout, tally: _Tally, dataset: DatasetDefinition
) -> tuple[str, ...]:
    form = f"wide ({len(layout.periods)} period columns)" if layout.periods else "long"
    notes = [f"read as an indicator table in {form} form"]
    if "area" not in layout.roles:
        notes.append(f"the table has no area column: area {UNSPECIFIED_AREA!r} (unspecified)")
    if layout.others:
        notes.append(f"columns kept in attributes: {[label for _, label in layout.others]}")
    invalid = sum(1 for row in rows if INVALID_KEY in row)
    if invalid:
        notes.append(f"{invalid} lines could not be read and are passed on as invalid")
    if tally.blank_cells:
        notes.append(
            f"{tally.blank_cells} blank cells in period columns were taken as no observation"
        )
    if tally.missing_values:
        notes.append(f"{tally.missing_values} observations have no value and are kept as missing")
    if tally.text_values:
        notes.append(f"{tally.text_values} values are not numbers and were kept as text")
    if tally.unread_periods:
        examples = ", ".join(repr(p) for p in dict.fromkeys(tally.unread_periods[:5]))
        notes.append(
            f"{len(tally.unread_periods)} periods are not periods this reads (e.g. "
            f"{examples}); kept as given in period_start"
        )
    if tally.regions:
        mapped = ", ".join(f"{k} ({n})" for k, n in sorted(tally.regions.items()))
        notes.append(f"areas mapped to regions: {mapped}")
    unknown = sorted(
        {k for row in rows for k in row} - {*dataset.field_names, REGION_KEY, INVALID_KEY}
    )
    if unknown:
        notes.append(f"rows carry fields not in {dataset.id!r}: {unknown}")
    if not rows:
        notes.append("the table holds no observations")
    return tuple(notes)
