"""The Transport Department's detector readings translated into one row per lane and period.

The feed (``https://resource.data.one.gov.hk/td/traffic-detectors/rawSpeedVol-all.xml``,
schema SpeedVolOcc-BR.xsd, every minute, two 30-second periods a file) is::

    <raw_speed_volume_list>
      <date>2025-08-05</date>
      <periods><period>
        <period_from>07:53:00</period_from><period_to>07:53:30</period_to>
        <detectors><detector>
          <detector_id>AID01101</detector_id><direction>South East</direction>
          <lanes><lane>
            <lane_id>Middle Lane</lane_id><speed>43</speed><occupancy>1</occupancy>
            <volume>2</volume><s.d.>5.7</s.d.><valid>Y</valid>
          </lane></lanes>
        </detector></detectors>
      </period></periods>
    </raw_speed_volume_list>

``date`` and the period times are Hong Kong local time, handed on in UTC; a period that ends
at or before it starts (23:59:30 to 00:00:00) ends on the next day. A missing or unreadable
``date`` fails the whole payload, since no reading in it would have a time. A period, detector
or lane that cannot be read (an element given twice or holding elements, a detector without
lanes) becomes one row the worker rejects with the reason. Empty elements (occupancy often
is) are missing values, never 0; values that are not numbers or times are kept as text for
the worker to reject, naming the field.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from xml.etree.ElementTree import Element

from connectors.errors import PayloadError
from connectors.payload import INVALID_KEY, ParsedPayload
from connectors.td_xml import (
    Converter,
    as_text,
    at_hong_kong,
    children_by_name,
    flag,
    iso_date,
    iso_time_of_day,
    leaf_text,
    notes_of,
    number,
    read_leaves,
    read_xml,
    whole,
)

NAME = "td-detector"
VERSION = "1"
FORMAT = "td-detector"
ROOT = "raw_speed_volume_list"

_PERIOD: dict[str, tuple[str, Converter]] = {
    "period_from": ("period_start", as_text),
    "period_to": ("period_end", as_text),
}
_DETECTOR: dict[str, tuple[str, Converter]] = {
    "detector_id": ("detector_id", as_text),
    "direction": ("direction", as_text),
}
_LANE: dict[str, tuple[str, Converter]] = {
    "lane_id": ("lane_id", as_text),
    "speed": ("speed", number),
    "occupancy": ("occupancy", number),
    "volume": ("volume", whole),
    "s.d.": ("speed_sd", number),
    "valid": ("valid", flag),
}


def parse_detector(data: bytes) -> ParsedPayload:
    """One row per ``<lane>`` reading of each detector in each period."""
    root = read_xml(data, ROOT, "TD detector")
    named = children_by_name(root)
    day = _date(named.get("date", []))
    tally: Counter[str] = Counter()
    for name in sorted(set(named) - {"date", "periods"}):
        tally[f"<{name}> elements in <{ROOT}> were not expected, ignored"] += len(named[name])
    rows: list[dict[str, object]] = []
    periods = [
        period
        for container in named.get("periods", [])
        for period in children_by_name(container).get("period", [])
    ]
    for number_, period in enumerate(periods, start=1):
        rows += _period_rows(period, f"<period> {number_}", day, tally)
    notes = notes_of(tally)
    invalid = sum(1 for row in rows if INVALID_KEY in row)
    if invalid:
        notes.insert(0, f"{invalid} periods, detectors or lanes could not be read (invalid rows)")
    if not periods:
        notes.append("the document holds no <period>")
    elif not rows:
        notes.append("the document's periods hold no detector readings")
    return ParsedPayload(rows=rows, format=FORMAT, notes=tuple(notes))


def _date(elements: list[Element]) -> date:
    if len(elements) != 1:
        given = "has no <date>" if not elements else f"gives <date> {len(elements)} times"
        raise PayloadError("bad-date", f"the TD detector document {given}")
    value = leaf_text(elements[0]) or ""
    day = iso_date(value)
    if day is None:
        raise PayloadError(
            "bad-date", f"the TD detector document's <date> {value[:40]!r} is not YYYY-MM-DD"
        )
    return day


def _period_rows(
    period: Element, where: str, day: date, tally: Counter[str]
) -> list[dict[str, object]]:
    values, problem = read_leaves(period, _PERIOD, where, tally, frozenset({"detectors"}))
    if problem is not None:
        return [{INVALID_KEY: problem}]
    times = _period_times(values, day, tally)
    detectors = [
        detector
        for container in children_by_name(period).get("detectors", [])
        for detector in children_by_name(container).get("detector", [])
    ]
    if not detectors:
        tally["periods held no <detector>"] += 1
    rows: list[dict[str, object]] = []
    for number_, detector in enumerate(detectors, start=1):
        rows += _detector_rows(detector, f"{where}, <detector> {number_}", times, tally)
    return rows


def _period_times(values: dict[str, object], day: date, tally: Counter[str]) -> dict[str, object]:
    """period_start and period_end as UTC times; unreadable text is kept for rejection."""
    times: dict[str, object] = {}
    start = None
    for field in ("period_start", "period_end"):
        value = values.get(field)
        if not isinstance(value, str):
            continue
        moment = iso_time_of_day(value)
        if moment is None:
            tally[f"{field} values were not HH:MM:SS (kept as text for rejection)"] += 1
            times[field] = value
            continue
        if field == "period_start":
            start = moment
        next_day = field == "period_end" and start is not None and moment <= start
        converted = at_hong_kong(day, moment, next_day=next_day)
        times[field] = value if converted is None else converted
    return times


def _detector_rows(
    detector: Element, where: str, times: dict[str, object], tally: Counter[str]
) -> list[dict[str, object]]:
    values, problem = read_leaves(detector, _DETECTOR, where, tally, frozenset({"lanes"}))
    if problem is not None:
        return [{INVALID_KEY: problem}]
    name = values.get("detector_id")
    where = f"{where} ({name})" if isinstance(name, str) else where
    lanes = [
        lane
        for container in children_by_name(detector).get("lanes", [])
        for lane in children_by_name(container).get("lane", [])
    ]
    if not lanes:
        return [{INVALID_KEY: f"{where}: no <lane> readings"}]
    rows: list[dict[str, object]] = []
    for number_, lane in enumerate(lanes, start=1):
        lane_values, lane_problem = read_leaves(lane, _LANE, f"{where}, <lane> {number_}", tally)
        if lane_problem is not None:
            rows.append({INVALID_KEY: lane_problem})
        else:
            rows.append({**values, **times, **lane_values})
    return rows
