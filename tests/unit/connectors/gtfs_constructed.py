"""Constructed GTFS-Realtime TripUpdates and Alerts feeds on the real Cairns static feed.

No real TripUpdates or Alerts sample is at hand, so these are built here with gtfs_realtime_pb2
from trip, route and stop ids of tests/fixtures/gtfs/cairns-gtfs-no-stop-times.zip (and a few
that match nothing). The bytes are committed beside the other GTFS fixtures
(constructed-trip-updates.pb, constructed-alerts.pb) for benchmarks and property tests;
test_gtfs_constructed_fixtures.py checks they are what this module builds.
"""

from __future__ import annotations

from datetime import UTC, datetime

from google.transit import gtfs_realtime_pb2

# 2014-06-02 08:00 in Cairns (UTC+10), while the Cairns static feed was in service.
FEED_TIME = int(datetime(2014, 6, 1, 22, tzinfo=UTC).timestamp())
CAIRNS_TRIPS = (
    "CNS2014-CNS_MUL-Weekday-00-4165878",
    "CNS2014-CNS_MUL-Weekday-00-4165918",
    "CNS2014-CNS_MUL-Weekday-00-4166133",
    "CNS2014-CNS_MUL-Weekday-00-4166173",
    "CNS2014-CNS_MUL-Weekday-00-4166396",
    "CNS2014-CNS_MUL-Weekday-00-4166563",
    "CNS2014-CNS_MUL-Weekday-00-4172124",
    "CNS2014-CNS_MUL-Weekday-00-4172566",
    "CNS2014-CNS_MUL-Weekday-00-4172720",
    "CNS2014-CNS_MUL-Weekday-00-4172807",
)
CAIRNS_STOPS = ("750101", "750102", "750103", "750104", "750105")
UNKNOWN_TRIP, UNKNOWN_STOP, UNKNOWN_ROUTE = "CNS2014-retired-trip", "759999", "999-423"


def _header(feed: gtfs_realtime_pb2.FeedMessage) -> None:
    feed.header.gtfs_realtime_version = "2.0"
    feed.header.incrementality = gtfs_realtime_pb2.FeedHeader.FULL_DATASET
    feed.header.timestamp = FEED_TIME


def trip_updates() -> bytes:
    """Ten Cairns trips with five stop predictions each, one cancelled trip, one unknown trip
    skipping a known and an unknown stop: 12 trip updates giving 53 rows."""
    feed = gtfs_realtime_pb2.FeedMessage()
    _header(feed)
    for number, trip_id in enumerate(CAIRNS_TRIPS):
        entity = feed.entity.add()
        entity.id = f"tu-{number}"
        update = entity.trip_update
        update.trip.trip_id = trip_id
        update.trip.start_date = "20140602"
        update.trip.schedule_relationship = gtfs_realtime_pb2.TripDescriptor.SCHEDULED
        update.vehicle.id = f"bus-{100 + number}"
        update.timestamp = FEED_TIME - number
        for sequence, stop_id in enumerate(CAIRNS_STOPS, start=1):
            stop = update.stop_time_update.add()
            stop.stop_sequence = sequence
            stop.stop_id = stop_id
            delay = 30 * number - 60
            stop.arrival.delay = delay
            stop.arrival.time = FEED_TIME + 120 * sequence + delay
            stop.departure.delay = delay
            stop.departure.time = FEED_TIME + 120 * sequence + delay + 20
            stop.departure.uncertainty = 30
    cancelled = feed.entity.add()
    cancelled.id = "tu-cancelled"
    cancelled.trip_update.trip.route_id = "110-423"
    cancelled.trip_update.trip.start_time = "08:15:00"
    cancelled.trip_update.trip.start_date = "20140602"
    cancelled.trip_update.trip.schedule_relationship = gtfs_realtime_pb2.TripDescriptor.CANCELED
    unknown = feed.entity.add()
    unknown.id = "tu-unknown"
    unknown.trip_update.trip.trip_id = UNKNOWN_TRIP
    for sequence, stop_id in enumerate((CAIRNS_STOPS[0], UNKNOWN_STOP), start=1):
        stop = unknown.trip_update.stop_time_update.add()
        stop.stop_sequence = sequence
        stop.stop_id = stop_id
        stop.schedule_relationship = gtfs_realtime_pb2.TripUpdate.StopTimeUpdate.SKIPPED
    return feed.SerializeToString()


def alerts() -> bytes:
    """Three alerts in English and Chinese on Cairns routes, stops and trips: seven rows."""
    feed = gtfs_realtime_pb2.FeedMessage()
    _header(feed)
    for alert_id, cause, effect, selectors in (
        (
            "roadworks-sheridan",
            gtfs_realtime_pb2.Alert.CONSTRUCTION,
            gtfs_realtime_pb2.Alert.STOP_MOVED,
            [("stop_id", CAIRNS_STOPS[2]), ("stop_id", CAIRNS_STOPS[3])],
        ),
        (
            "detour-110",
            gtfs_realtime_pb2.Alert.SPECIAL_EVENT,
            gtfs_realtime_pb2.Alert.DETOUR,
            [("route_id", "110-423"), ("route_id", UNKNOWN_ROUTE), ("trip_id", CAIRNS_TRIPS[0])],
        ),
        (
            "strike",
            gtfs_realtime_pb2.Alert.STRIKE,
            gtfs_realtime_pb2.Alert.REDUCED_SERVICE,
            [("agency_id", "qconnect"), ("route_id", "120-423")],
        ),
    ):
        entity = feed.entity.add()
        entity.id = alert_id
        alert = entity.alert
        alert.cause, alert.effect = cause, effect
        alert.severity_level = gtfs_realtime_pb2.Alert.WARNING
        period = alert.active_period.add()
        period.start, period.end = FEED_TIME - 3600, FEED_TIME + 7200
        for language, header, description in (
            ("en", f"Service change: {alert_id}", "Please allow extra time."),
            ("zh-Hant", f"服務調整 {alert_id}", "請預留額外時間。"),
        ):
            for text, value in ((alert.header_text, header), (alert.description_text, description)):
                translation = text.translation.add()
                translation.language, translation.text = language, value
        for name, value in selectors:
            selector = alert.informed_entity.add()
            if name == "trip_id":
                selector.trip.trip_id = value
            else:
                setattr(selector, name, value)
    return feed.SerializeToString()
