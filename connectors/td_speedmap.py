"""The Transport Department's traffic speed map translated into one row per road link.

The feed (``https://resource.data.one.gov.hk/td/speedmap.xml``, every two minutes) is
``<jtis_speedlist>`` holding one ``<jtis_speedmap>`` per link with LINK_ID, REGION (the TD's
area code: HK, K, ST, TM), ROAD_TYPE, ROAD_SATURATION_LEVEL, TRAFFIC_SPEED (km/h) and
CAPTURE_DATE (Hong Kong local time, e.g. ``2015-01-26T12:18:35``, handed on in UTC).

A link that cannot be read (an element given twice or holding elements) becomes a row the
worker rejects with the reason; an empty element is a missing value, never 0; a value that is
not a number or a time is kept as text for the worker to reject, naming the field.
"""

from __future__ import annotations

from collections import Counter

from connectors.payload import INVALID_KEY, ParsedPayload
from connectors.td_xml import (
    Converter,
    as_text,
    local_name,
    notes_of,
    number,
    read_leaves,
    read_xml,
    timestamp,
)

NAME = "td-speedmap"
VERSION = "1"
FORMAT = "td-speedmap"
ROOT, ITEM = "jtis_speedlist", "jtis_speedmap"

_FIELDS: dict[str, tuple[str, Converter]] = {
    "LINK_ID": ("link_id", as_text),
    "REGION": ("td_region", as_text),
    "ROAD_TYPE": ("road_type", as_text),
    "ROAD_SATURATION_LEVEL": ("saturation_level", as_text),
    "TRAFFIC_SPEED": ("speed", number),
    "CAPTURE_DATE": ("captured_at", timestamp),
}


def parse_speedmap(data: bytes) -> ParsedPayload:
    """One row per ``<jtis_speedmap>`` link reading."""
    root = read_xml(data, ROOT, "TD speed map")
    tally: Counter[str] = Counter()
    rows: list[dict[str, object]] = []
    for child in root:
        name = local_name(child.tag)
        if name != ITEM:
            if name:
                tally[f"<{name}> elements in <{ROOT}> were not expected, ignored"] += 1
            continue
        where = f"<{ITEM}> {len(rows) + 1}"
        values, problem = read_leaves(child, _FIELDS, where, tally)
        rows.append({INVALID_KEY: problem} if problem is not None else values)
    notes = notes_of(tally)
    invalid = sum(1 for row in rows if INVALID_KEY in row)
    if invalid:
        notes.insert(0, f"{invalid} links could not be read and are passed on as invalid")
    if not rows:
        notes.append(f"the speed map holds no <{ITEM}> links")
    return ParsedPayload(rows=rows, format=FORMAT, notes=tuple(notes))
