"""GTFS-Realtime VehiclePositions feeds translated into vehicle-position rows."""

from __future__ import annotations

import math
import struct
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2

from connectors.errors import PayloadError
from connectors.gtfs_static import GtfsStatic
from connectors.payload import ParsedPayload

__all__ = ["NAME", "VERSION", "GtfsStatic", "parse_vehicle_positions"]

NAME = "gtfs-realtime"
VERSION = "1"
FORMAT = "gtfs-realtime/vehicle-positions"

_WIRE_VARINT, _WIRE_I64, _WIRE_LEN, _WIRE_I32 = 0, 1, 2, 5
_MAX_VARINT_BYTES = 10


def parse_vehicle_positions(data: bytes, *, static: GtfsStatic | None = None) -> ParsedPayload:
    """One row per entity with a vehicle position; static GTFS adds route_short_name."""
    feed = _decode_feed(data)
    header_time = feed.header.timestamp if feed.header.HasField("timestamp") else None
    tally: Counter[str] = Counter()
    rows: list[dict[str, object]] = []
    for entity in feed.entity:
        if not entity.HasField("vehicle"):
            tally["entities were not vehicle positions"] += 1
        elif not entity.vehicle.HasField("position"):
            tally["entities had no vehicle position"] += 1
        else:
            rows.append(_row(entity, header_time, tally))
    notes = [f"{count} {what}" for what, count in sorted(tally.items())]
    if static is not None:
        notes += _enrich(rows, static, header_time)
    if not feed.entity:
        notes.append("the feed holds no entities")
    return ParsedPayload(rows=rows, format=FORMAT, notes=tuple(notes))


def _decode_feed(data: bytes) -> gtfs_realtime_pb2.FeedMessage:
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


def _row(
    entity: gtfs_realtime_pb2.FeedEntity, header_time: int | None, tally: Counter[str]
) -> dict[str, object]:
    vehicle = entity.vehicle
    position = vehicle.position
    row: dict[str, object] = {}
    vehicle_id = _text(vehicle.vehicle.id, tally) or _text(entity.id, tally)
    if vehicle_id:
        row["vehicle_id"] = vehicle_id
    seconds = vehicle.timestamp if vehicle.HasField("timestamp") else header_time
    if seconds is None:
        tally["vehicles had no timestamp, nor had the feed header"] += 1
    else:
        row["observed_at"] = _utc(seconds, tally)
    row["lat"] = _float32(position.latitude)
    row["lon"] = _float32(position.longitude)
    if position.HasField("bearing"):
        row["bearing"] = _float32(position.bearing)
    if position.HasField("speed"):
        row["speed"] = _float32(position.speed)  # GTFS-Realtime speeds are metres per second
    for key, message, name in (
        ("route_id", vehicle.trip, "route_id"),
        ("trip_id", vehicle.trip, "trip_id"),
        ("stop_id", vehicle, "stop_id"),
    ):
        if message.HasField(name):
            text = _text(getattr(message, name), tally)
            if text:
                row[key] = text
    if vehicle.HasField("current_status"):
        row["current_status"] = _enum_name(
            gtfs_realtime_pb2.VehiclePosition.VehicleStopStatus, vehicle.current_status
        )
    if vehicle.HasField("occupancy_status"):
        row["occupancy_status"] = _enum_name(
            gtfs_realtime_pb2.VehiclePosition.OccupancyStatus, vehicle.occupancy_status
        )
    entity_id = _text(entity.id, tally)
    if entity_id:
        row["entity_id"] = entity_id
    return row


def _float32(value: float) -> float:
    """The shortest decimal that is the same float32, e.g. 28.0662212, not 28.066221237182617.

    Position fields are float32 on the wire; widening them to float64 invents digits the
    producer never sent, which would then be stored and hashed as if they were data.
    """
    if not math.isfinite(value):
        return value
    for digits in range(6, 10):
        candidate = float(f"{value:.{digits}g}")
        try:
            if struct.unpack("<f", struct.pack("<f", candidate))[0] == value:
                return candidate
        except OverflowError:
            continue
    return value


def _utc(seconds: int, tally: Counter[str]) -> object:
    """POSIX seconds as a UTC datetime; an impossible time is kept as the number for rejection."""
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, ValueError, OSError):
        tally["timestamps were out of range (kept as numbers)"] += 1
        return seconds


def _text(value: str | bytes, tally: Counter[str]) -> str:
    # upb hands back bytes when a proto2 string field is not valid UTF-8.
    if isinstance(value, bytes):
        tally["text values were not UTF-8 (bad bytes replaced with U+FFFD)"] += 1
        return value.decode("utf-8", errors="replace")
    return value


def _enum_name(enum: Any, number: int) -> str:
    try:
        return str(enum.Name(number))
    except ValueError:
        return str(number)


def _enrich(
    rows: list[dict[str, object]], static: GtfsStatic, header_time: int | None
) -> list[str]:
    """Add route_short_name from the static feed; say what did not match and if it expired."""
    unmatched_routes: set[str] = set()
    unmatched_stops: set[str] = set()
    for row in rows:
        route_id = row.get("route_id")
        if isinstance(route_id, str):
            short_name = static.route_short_names.get(route_id)
            if short_name is None:
                unmatched_routes.add(route_id)
            elif short_name:
                row["route_short_name"] = short_name
        stop_id = row.get("stop_id")
        if isinstance(stop_id, str) and stop_id not in static.stop_ids:
            unmatched_stops.add(stop_id)
    notes = [
        f"{len(unmatched_routes)} route_ids did not match the static routes.txt"
        + (f": {sorted(unmatched_routes)[:10]}" if unmatched_routes else ""),
    ]
    if unmatched_stops:
        notes.append(
            f"{len(unmatched_stops)} stop_ids did not match the static stops.txt: "
            f"{sorted(unmatched_stops)[:10]}"
        )
    notes.append(_expiry_note(static, header_time))
    return notes


def _expiry_note(static: GtfsStatic, header_time: int | None) -> str:
    if static.service_end is None:
        return "the static GTFS states no end of service (no feed_info or calendar end date)"
    if header_time is None:
        return f"static GTFS service ends {static.service_end}; the feed header has no timestamp"
    try:
        feed_day = datetime.fromtimestamp(header_time, UTC).date()
    except (OverflowError, ValueError, OSError):
        return f"static GTFS service ends {static.service_end}; the feed header time is invalid"
    # Service dates are local to the agency; comparing UTC dates can be a day off at midnight.
    if feed_day > static.service_end:
        return f"static GTFS expired: service ended {static.service_end}, feed is from {feed_day}"
    return f"static GTFS is current: service ends {static.service_end}, feed is from {feed_day}"
