"""What every GTFS-Realtime parser shares: decoding a FeedMessage and reading its values.

Decoding fails the whole payload with a PayloadError naming what was wrong (empty, cut short,
not protobuf, no header). Values are read leniently and counted in a tally that becomes the
parsed payload's notes: a time that no datetime can hold is kept as its number, text that is
not UTF-8 has its bad bytes replaced, an unknown enum number is kept as its digits.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2

from connectors.errors import PayloadError
from connectors.gtfs_static import GtfsStatic
from connectors.payload import ParsedPayload

_WIRE_VARINT, _WIRE_I64, _WIRE_LEN, _WIRE_I32 = 0, 1, 2, 5
_MAX_VARINT_BYTES = 10
# FeedEntity fields holding one kind of entity each, in the words notes use.
_ENTITY_KINDS = (
    ("vehicle", "vehicle positions"),
    ("trip_update", "trip updates"),
    ("alert", "alerts"),
    ("shape", "shapes"),
    ("stop", "stops"),
    ("trip_modifications", "trip modifications"),
)


def decode_feed(data: bytes) -> gtfs_realtime_pb2.FeedMessage:
    """The FeedMessage in ``data``; a PayloadError if it is not one."""
    if not data:
        raise PayloadError("empty-payload", "the GTFS-Realtime payload is empty")
    feed = gtfs_realtime_pb2.FeedMessage()
    try:
        feed.ParseFromString(data)
    except DecodeError as error:
        # upb says only "wire format was corrupt"; walking the top-level fields tells a feed
        # that was cut short (a common download failure) from bytes that are not protobuf.
        truncation = _truncation(data)
        if truncation is not None:
            raise PayloadError("truncated-protobuf", truncation) from None
        raise PayloadError(
            "bad-protobuf", f"not a GTFS-Realtime FeedMessage ({len(data)} bytes): {error}"
        ) from None
    # proto2 `required` is not enforced by parsing, so almost any bytes "parse".
    if not feed.HasField("header"):
        raise PayloadError("missing-header", "the FeedMessage has no header: not GTFS-Realtime")
    if not feed.header.gtfs_realtime_version:
        raise PayloadError("missing-header", "the FeedMessage header has no gtfs_realtime_version")
    return feed


Row = dict[str, object]
RowMaker = Callable[[gtfs_realtime_pb2.FeedEntity, int | None, Counter[str]], list[Row]]
Enricher = Callable[[list[Row], GtfsStatic, int | None], list[str]]


def entity_rows(
    feed: gtfs_realtime_pb2.FeedMessage,
    *,
    kind: str,
    label: str,
    make_rows: RowMaker,
    enrich: Enricher,
    static: GtfsStatic | None,
    format_name: str,
    tally: Counter[str] | None = None,
) -> ParsedPayload:
    """The rows of every entity holding a ``kind`` message (deleted ones skipped and counted),
    joined with the static feed when given, with notes on what was passed over."""
    feed_time = header_time(feed)
    tally = Counter() if tally is None else tally
    rows: list[Row] = []
    found = 0
    for entity in feed.entity:
        if not entity.HasField(kind):
            continue
        found += 1
        if entity.is_deleted:
            tally[f"{label} were marked deleted and skipped"] += 1
            continue
        rows += make_rows(entity, feed_time, tally)
    notes = notes_of(tally)
    if static is not None:
        notes += enrich(rows, static, feed_time)
    census = census_note(feed, label, found)
    if census is not None:
        notes.append(census)
    return ParsedPayload(rows=rows, format=format_name, notes=tuple(notes))


def header_time(feed: gtfs_realtime_pb2.FeedMessage) -> int | None:
    return feed.header.timestamp if feed.header.HasField("timestamp") else None


def census_note(feed: gtfs_realtime_pb2.FeedMessage, wanted: str, found: int) -> str | None:
    """A note when the feed holds entities but none of the kind wanted, naming what it holds."""
    if not feed.entity:
        return "the feed holds no entities"
    if found:
        return None
    held: Counter[str] = Counter()
    for entity in feed.entity:
        kinds = [words for name, words in _ENTITY_KINDS if entity.HasField(name)]
        held.update(kinds or ["entities of no known kind"])
    holds = ", ".join(f"{count} {words}" for words, count in sorted(held.items()))
    return f"the feed holds no {wanted}: its {len(feed.entity)} entities are {holds}"


def _truncation(data: bytes) -> str | None:
    """Where the top-level fields run past the end of the data, or None if they do not."""
    size, pos = len(data), 0
    while pos < size:
        start = pos
        tag, pos = _varint(data, pos)
        if tag is None or tag >> 3 == 0:
            return _ends_early(start, size) if pos > size else None
        wire = tag & 7
        if wire == _WIRE_VARINT:
            value, pos = _varint(data, pos)
            if value is None:
                return _ends_early(start, size) if pos > size else None
        elif wire == _WIRE_LEN:
            length, pos = _varint(data, pos)
            if length is None:
                return _ends_early(start, size) if pos > size else None
            pos += length
        elif wire in (_WIRE_I64, _WIRE_I32):
            pos += 8 if wire == _WIRE_I64 else 4
        else:
            return None  # groups or invalid wire types: malformed, not cut short
        if pos > size:
            return (
                f"truncated at byte {size}: field {tag >> 3} starting at byte offset {start} "
                f"needs {pos - start} bytes but only {size - start} remain"
            )
    return None


def _ends_early(start: int, size: int) -> str:
    return f"truncated at byte {size}: the field starting at byte offset {start} is cut off"


def _varint(data: bytes, pos: int) -> tuple[int | None, int]:
    """(value, next position); value None with position past the end when data runs out."""
    value = 0
    for shift in range(_MAX_VARINT_BYTES):
        if pos >= len(data):
            return None, len(data) + 1
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << (7 * shift)
        if not byte & 0x80:
            return value, pos
    return None, pos  # more than ten bytes: malformed


def float32(value: float) -> float:
    """The shortest decimal that is the same float32, e.g. 28.066221, not 28.066221237182617.

    Position fields are float32 on the wire; widening them to float64 invents digits the
    producer never sent, which would then be stored and hashed as if they were data.
    """
    if not math.isfinite(value):
        return value
    # numpy prints a float32 as the shortest decimal that reads back as the same float32.
    return float(str(np.float32(value)))


def utc(seconds: int, tally: Counter[str]) -> object:
    """POSIX seconds as a UTC datetime; an impossible time is kept as the number for rejection."""
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, ValueError, OSError):
        tally["timestamps were out of range (kept as numbers)"] += 1
        return seconds


def text(value: str | bytes, tally: Counter[str]) -> str:
    # upb hands back bytes when a proto2 string field is not valid UTF-8.
    if isinstance(value, bytes):
        tally["text values were not UTF-8 (bad bytes replaced with U+FFFD)"] += 1
        return value.decode("utf-8", errors="replace")
    return value


def optional_text(message: Any, name: str, tally: Counter[str]) -> str | None:
    """A string field's value, or None when it is absent or empty."""
    if not message.HasField(name):
        return None
    return text(getattr(message, name), tally) or None


def enum_name(enum: Any, number: int) -> str:
    try:
        return str(enum.Name(number))
    except ValueError:
        return str(number)


def notes_of(tally: Counter[str]) -> list[str]:
    return [f"{count} {what}" for what, count in sorted(tally.items())]


def expiry_note(static: GtfsStatic, feed_time: int | None) -> str:
    """Whether the static feed's service had ended by the time of the realtime feed."""
    if static.service_end is None:
        return "the static GTFS states no end of service (no feed_info or calendar end date)"
    if feed_time is None:
        return f"static GTFS service ends {static.service_end}; the feed header has no timestamp"
    try:
        feed_day: date = datetime.fromtimestamp(feed_time, UTC).date()
    except (OverflowError, ValueError, OSError):
        return f"static GTFS service ends {static.service_end}; the feed header time is invalid"
    # Service dates are local to the agency; comparing UTC dates can be a day off at midnight.
    if feed_day > static.service_end:
        return f"static GTFS expired: service ended {static.service_end}, feed is from {feed_day}"
    return f"static GTFS is current: service ends {static.service_end}, feed is from {feed_day}"


def unmatched_note(what: str, unmatched: set[str], table: str) -> str:
    """``N <what> did not match the static <table>``, listing the first ten."""
    listed = f": {sorted(unmatched)[:10]}" if unmatched else ""
    return f"{len(unmatched)} {what} did not match the static {table}{listed}"
