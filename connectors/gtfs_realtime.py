"""GTFS-Realtime feeds translated into rows: vehicle positions, trip updates or alerts.

One format, ``gtfs-rt``, reads all three entity kinds; the target dataset says which one it
wants by its key fields, which say what one of its records is:

- a key field ``vehicle_id``: VehiclePositions, one record per positioned vehicle;
- a key field ``stop_update``: TripUpdates, one record per StopTimeUpdate
  (connectors.gtfs_trip_updates);
- a key field ``informed_entity``: Alerts, one record per alert and informed entity
  (connectors.gtfs_alerts).

The shipped definitions (connectors/datasets/gtfs-rt-*.yaml) are keyed so. A dataset keyed by
none of these, or by more than one, is refused with a PayloadError once the feed itself has
been read. A feed that holds none of the wanted kind gives no rows and a note naming what it
holds instead.
"""

from __future__ import annotations

from collections import Counter

from google.transit import gtfs_realtime_pb2

from connectors import gtfs_alerts, gtfs_trip_updates
from connectors.errors import PayloadError
from connectors.gtfs_feed import (
    census_note,
    decode_feed,
    enum_name,
    expiry_note,
    float32,
    header_time,
    notes_of,
    text,
    unmatched_note,
    utc,
)
from connectors.gtfs_static import GtfsStatic
from connectors.payload import ParsedPayload
from domain.dataset import DatasetDefinition

__all__ = [
    "NAME",
    "VERSION",
    "GtfsStatic",
    "entity_kind_of",
    "parse_feed",
    "parse_vehicle_positions",
    "vehicle_positions_from_feed",
]

NAME = "gtfs-realtime"
VERSION = "1"
FORMAT = "gtfs-realtime/vehicle-positions"

VEHICLE_POSITIONS, TRIP_UPDATES, ALERTS = "vehicle-positions", "trip-updates", "alerts"
# The key field that marks a dataset as wanting each entity kind.
_KIND_BY_KEY = {
    "vehicle_id": VEHICLE_POSITIONS,
    "stop_update": TRIP_UPDATES,
    "informed_entity": ALERTS,
}


def entity_kind_of(dataset: DatasetDefinition) -> str:
    """Which entity kind ``dataset`` holds, told by its key fields (see the module docstring)."""
    kinds = sorted({_KIND_BY_KEY[key] for key in dataset.key_fields if key in _KIND_BY_KEY})
    if len(kinds) != 1:
        expected = ", ".join(f"{key!r} ({kind})" for key, kind in _KIND_BY_KEY.items())
        found = "none of them" if not kinds else f"several: {kinds}"
        raise PayloadError(
            "unknown-entity-kind",
            f"dataset {dataset.id!r} is keyed by {list(dataset.key_fields)}, which names "
            f"{found}; a GTFS-Realtime dataset has exactly one of the key fields {expected}",
        )
    return kinds[0]


def parse_feed(
    data: bytes, dataset: DatasetDefinition, *, static: GtfsStatic | None = None
) -> ParsedPayload:
    """The entities of the kind ``dataset`` wants, as rows; static GTFS adds names."""
    feed = decode_feed(data)
    kind = entity_kind_of(dataset)
    if kind == TRIP_UPDATES:
        return gtfs_trip_updates.trip_updates_from_feed(feed, static=static)
    if kind == ALERTS:
        return gtfs_alerts.alerts_from_feed(feed, static=static)
    return vehicle_positions_from_feed(feed, static=static)


def parse_vehicle_positions(data: bytes, *, static: GtfsStatic | None = None) -> ParsedPayload:
    """One row per entity with a vehicle position; static GTFS adds route_short_name."""
    return vehicle_positions_from_feed(decode_feed(data), static=static)


def vehicle_positions_from_feed(
    feed: gtfs_realtime_pb2.FeedMessage, *, static: GtfsStatic | None = None
) -> ParsedPayload:
    feed_time = header_time(feed)
    tally: Counter[str] = Counter()
    rows: list[dict[str, object]] = []
    vehicles = 0
    for entity in feed.entity:
        if not entity.HasField("vehicle"):
            tally["entities were not vehicle positions"] += 1
            continue
        vehicles += 1
        if not entity.vehicle.HasField("position"):
            tally["entities had no vehicle position"] += 1
        else:
            rows.append(_row(entity, feed_time, tally))
    notes = notes_of(tally)
    if static is not None:
        notes += _enrich(rows, static, feed_time)
    census = census_note(feed, "vehicle positions", vehicles)
    if census is not None:
        notes.append(census)
    return ParsedPayload(rows=rows, format=FORMAT, notes=tuple(notes))


def _row(
    entity: gtfs_realtime_pb2.FeedEntity, feed_time: int | None, tally: Counter[str]
) -> dict[str, object]:
    vehicle = entity.vehicle
    position = vehicle.position
    row: dict[str, object] = {}
    vehicle_id = text(vehicle.vehicle.id, tally) or text(entity.id, tally)
    if vehicle_id:
        row["vehicle_id"] = vehicle_id
    seconds = vehicle.timestamp if vehicle.HasField("timestamp") else feed_time
    if seconds is None:
        tally["vehicles had no timestamp, nor had the feed header"] += 1
    else:
        row["observed_at"] = utc(seconds, tally)
    row["lat"] = float32(position.latitude)
    row["lon"] = float32(position.longitude)
    if position.HasField("bearing"):
        row["bearing"] = float32(position.bearing)
    if position.HasField("speed"):
        row["speed"] = float32(position.speed)  # GTFS-Realtime speeds are metres per second
    for key, message, name in (
        ("route_id", vehicle.trip, "route_id"),
        ("trip_id", vehicle.trip, "trip_id"),
        ("stop_id", vehicle, "stop_id"),
    ):
        if message.HasField(name):
            value = text(getattr(message, name), tally)
            if value:
                row[key] = value
    if vehicle.HasField("current_status"):
        row["current_status"] = enum_name(
            gtfs_realtime_pb2.VehiclePosition.VehicleStopStatus, vehicle.current_status
        )
    if vehicle.HasField("occupancy_status"):
        row["occupancy_status"] = enum_name(
            gtfs_realtime_pb2.VehiclePosition.OccupancyStatus, vehicle.occupancy_status
        )
    entity_id = text(entity.id, tally)
    if entity_id:
        row["entity_id"] = entity_id
    return row


def _enrich(rows: list[dict[str, object]], static: GtfsStatic, feed_time: int | None) -> list[str]:
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
    notes = [unmatched_note("route_ids", unmatched_routes, "routes.txt")]
    if unmatched_stops:
        notes.append(unmatched_note("stop_ids", unmatched_stops, "stops.txt"))
    notes.append(expiry_note(static, feed_time))
    return notes
