"""GTFS-Realtime TripUpdates translated into one row per stop-time update.

A row is keyed by the feed entity's id, the update's position in its TripUpdate
(``stop_update``, from 1) and the time the update was made (``observed_at``: the TripUpdate's
timestamp, else the feed header's). A TripUpdate that lists no StopTimeUpdates (a cancelled
trip, a trip-wide delay) becomes one trip-level row with ``stop_update`` 0. A TripUpdate
without a trip descriptor is kept, without trip fields, and counted in the notes; entities
marked deleted are skipped and counted.

With a static feed: route_id is taken from trips.txt when the realtime trip names only its
trip_id, route_short_name from routes.txt, stop_name from stops.txt; trip_ids, route_ids and
stop_ids that match nothing are listed in the notes, as is whether the static feed's service
had ended by the time of the realtime feed.
"""

from __future__ import annotations

from collections import Counter

from google.transit import gtfs_realtime_pb2

from connectors.gtfs_feed import (
    decode_feed,
    entity_rows,
    enum_name,
    expiry_note,
    optional_text,
    text,
    unmatched_note,
    utc,
)
from connectors.gtfs_static import GtfsStatic
from connectors.payload import ParsedPayload

FORMAT = "gtfs-realtime/trip-updates"

_TripRelationship = gtfs_realtime_pb2.TripDescriptor.ScheduleRelationship
_StopRelationship = gtfs_realtime_pb2.TripUpdate.StopTimeUpdate.ScheduleRelationship


def parse_trip_updates(data: bytes, *, static: GtfsStatic | None = None) -> ParsedPayload:
    """One row per StopTimeUpdate (or per TripUpdate that lists none)."""
    return trip_updates_from_feed(decode_feed(data), static=static)


def trip_updates_from_feed(
    feed: gtfs_realtime_pb2.FeedMessage, *, static: GtfsStatic | None = None
) -> ParsedPayload:
    return entity_rows(
        feed,
        kind="trip_update",
        label="trip updates",
        make_rows=_rows,
        enrich=_enrich,
        static=static,
        format_name=FORMAT,
    )


def _rows(
    entity: gtfs_realtime_pb2.FeedEntity, feed_time: int | None, tally: Counter[str]
) -> list[dict[str, object]]:
    update = entity.trip_update
    trip: dict[str, object] = {}
    entity_id = text(entity.id, tally)
    if entity_id:
        trip["entity_id"] = entity_id
    else:
        tally["entities had no id (their records lack the key field entity_id)"] += 1
    seconds = update.timestamp if update.HasField("timestamp") else feed_time
    if seconds is None:
        tally["trip updates had no timestamp, nor had the feed header"] += 1
    else:
        trip["observed_at"] = utc(seconds, tally)
    if update.HasField("trip"):
        trip.update(_trip_fields(update.trip, tally))
    else:
        tally["trip updates had no trip descriptor (kept without trip fields)"] += 1
    vehicle_id = optional_text(update.vehicle, "id", tally)
    if vehicle_id is not None:
        trip["vehicle_id"] = vehicle_id
    if update.HasField("delay"):
        trip["trip_delay"] = update.delay
    if not update.stop_time_update:
        tally["trip updates listed no stop-time updates (one trip-level record each)"] += 1
        return [{**trip, "stop_update": 0}]
    return [
        {**trip, "stop_update": position, **_stop_fields(stop, tally)}
        for position, stop in enumerate(update.stop_time_update, start=1)
    ]


def _trip_fields(
    descriptor: gtfs_realtime_pb2.TripDescriptor, tally: Counter[str]
) -> dict[str, object]:
    fields: dict[str, object] = {}
    for name in ("trip_id", "route_id", "start_date", "start_time"):
        value = optional_text(descriptor, name, tally)
        if value is not None:
            fields[name] = value
    if descriptor.HasField("direction_id"):
        fields["direction_id"] = descriptor.direction_id
    if descriptor.HasField("schedule_relationship"):
        fields["trip_schedule_relationship"] = enum_name(
            _TripRelationship, descriptor.schedule_relationship
        )
    return fields


def _stop_fields(
    stop: gtfs_realtime_pb2.TripUpdate.StopTimeUpdate, tally: Counter[str]
) -> dict[str, object]:
    fields: dict[str, object] = {}
    if stop.HasField("stop_sequence"):
        fields["stop_sequence"] = stop.stop_sequence
    stop_id = optional_text(stop, "stop_id", tally)
    if stop_id is not None:
        fields["stop_id"] = stop_id
    if stop.HasField("schedule_relationship"):
        fields["stop_schedule_relationship"] = enum_name(
            _StopRelationship, stop.schedule_relationship
        )
    for prefix, event in (("arrival", stop.arrival), ("departure", stop.departure)):
        if event.HasField("time"):
            fields[f"{prefix}_time"] = utc(event.time, tally)
        if event.HasField("delay"):
            fields[f"{prefix}_delay"] = event.delay
        if event.HasField("uncertainty"):
            fields[f"{prefix}_uncertainty"] = event.uncertainty
    return fields


def _enrich(rows: list[dict[str, object]], static: GtfsStatic, feed_time: int | None) -> list[str]:
    unmatched_trips: set[str] = set()
    unmatched_routes: set[str] = set()
    unmatched_stops: set[str] = set()
    routes_from_trips = 0
    for row in rows:
        trip_id = row.get("trip_id")
        if isinstance(trip_id, str) and static.has_trips:
            route_of_trip = static.trip_routes.get(trip_id)
            if route_of_trip is None:
                unmatched_trips.add(trip_id)
            elif "route_id" not in row and route_of_trip:
                row["route_id"] = route_of_trip
                routes_from_trips += 1
        route_id = row.get("route_id")
        if isinstance(route_id, str):
            short_name = static.route_short_names.get(route_id)
            if short_name is None:
                unmatched_routes.add(route_id)
            elif short_name:
                row["route_short_name"] = short_name
        stop_id = row.get("stop_id")
        if isinstance(stop_id, str):
            stop_name = static.stop_names.get(stop_id)
            if stop_id not in static.stop_ids:
                unmatched_stops.add(stop_id)
            elif stop_name:
                row["stop_name"] = stop_name
    notes = []
    if static.has_trips:
        notes.append(unmatched_note("trip_ids", unmatched_trips, "trips.txt"))
    else:
        notes.append("the static GTFS has no trips.txt: trip_ids were not checked")
    if routes_from_trips:
        notes.append(f"{routes_from_trips} records took their route_id from the static trips.txt")
    notes.append(unmatched_note("route_ids", unmatched_routes, "routes.txt"))
    notes.append(unmatched_note("stop_ids", unmatched_stops, "stops.txt"))
    notes.append(expiry_note(static, feed_time))
    return notes
