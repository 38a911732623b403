"""GTFS-Realtime TripUpdates: constructed feeds (built here with gtfs_realtime_pb2) joined with
real static feeds (Cairns from gtfs-kit, USF Bull Runner)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.transit import gtfs_realtime_pb2

from connectors.datasets import GTFS_RT_TRIP_UPDATES, load
from connectors.errors import PayloadError
from connectors.gtfs_static import GtfsStatic
from connectors.gtfs_trip_updates import parse_trip_updates
from domain.record import RecordValidator
from domain.region import RegionRegistry
from domain.rejection import RejectionReason

GTFS = Path(__file__).resolve().parents[2] / "fixtures" / "gtfs"
# 2014-06-02 08:00 in Cairns (UTC+10), while the Cairns static feed was in service.
CAIRNS_TIME = int(datetime(2014, 6, 1, 22, tzinfo=UTC).timestamp())
CAIRNS_TRIP = "CNS2014-CNS_MUL-Weekday-00-4165878"  # route 110-423, short name 110


def _cairns() -> GtfsStatic:
    return GtfsStatic.from_zip((GTFS / "cairns-gtfs-no-stop-times.zip").read_bytes())


def _feed(header_time: int | None = CAIRNS_TIME) -> gtfs_realtime_pb2.FeedMessage:
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    if header_time is not None:
        feed.header.timestamp = header_time
    return feed


def _add_update(
    feed: gtfs_realtime_pb2.FeedMessage, entity_id: str, trip_id: str | None = CAIRNS_TRIP
) -> gtfs_realtime_pb2.TripUpdate:
    entity = feed.entity.add()
    entity.id = entity_id
    update = entity.trip_update
    if trip_id is not None:
        update.trip.trip_id = trip_id
    return update


def _add_stop(
    update: gtfs_realtime_pb2.TripUpdate, stop_id: str, sequence: int, delay: int
) -> gtfs_realtime_pb2.TripUpdate.StopTimeUpdate:
    stop = update.stop_time_update.add()
    stop.stop_id = stop_id
    stop.stop_sequence = sequence
    stop.arrival.delay = delay
    stop.arrival.time = CAIRNS_TIME + 600 + delay
    return stop


def _validate(rows: list[dict[str, object]]) -> tuple[int, list[tuple[RejectionReason, str]]]:
    validator = RecordValidator(load(GTFS_RT_TRIP_UPDATES), RegionRegistry.default())
    batch = validator.validate(rows, "hk", datetime(2030, 1, 1, tzinfo=UTC))
    return len(batch.accepted), [(r.reason, r.message) for r in batch.rejected]


def test_each_stop_time_update_becomes_one_row_keyed_by_entity_position_and_time() -> None:
    feed = _feed()
    update = _add_update(feed, "tu-1")
    update.trip.start_date = "20140602"
    update.trip.direction_id = 0
    update.vehicle.id = "bus-7"
    _add_stop(update, "750337", 1, 60)
    _add_stop(update, "750000", 2, 90).departure.delay = 95

    parsed = parse_trip_updates(feed.SerializeToString())

    assert parsed.format == "gtfs-realtime/trip-updates"
    observed = datetime.fromtimestamp(CAIRNS_TIME, UTC)
    assert parsed.rows == [
        {
            "entity_id": "tu-1",
            "observed_at": observed,
            "trip_id": CAIRNS_TRIP,
            "start_date": "20140602",
            "direction_id": 0,
            "vehicle_id": "bus-7",
            "stop_update": 1,
            "stop_sequence": 1,
            "stop_id": "750337",
            "arrival_time": datetime.fromtimestamp(CAIRNS_TIME + 660, UTC),
            "arrival_delay": 60,
        },
        {
            "entity_id": "tu-1",
            "observed_at": observed,
            "trip_id": CAIRNS_TRIP,
            "start_date": "20140602",
            "direction_id": 0,
            "vehicle_id": "bus-7",
            "stop_update": 2,
            "stop_sequence": 2,
            "stop_id": "750000",
            "arrival_time": datetime.fromtimestamp(CAIRNS_TIME + 690, UTC),
            "arrival_delay": 90,
            "departure_delay": 95,
        },
    ]
    assert parsed.notes == ()
    assert _validate(parsed.rows) == (2, [])


def test_the_cairns_static_feed_adds_route_from_trips_route_short_name_and_stop_names() -> None:
    feed = _feed()
    update = _add_update(feed, "tu-1")
    _add_stop(update, "750337", 1, 0)

    parsed = parse_trip_updates(feed.SerializeToString(), static=_cairns())

    row = parsed.rows[0]
    assert (row["route_id"], row["route_short_name"]) == ("110-423", "110")
    assert row["stop_name"] == "Warren St - Hail and Ride Location"
    assert parsed.notes == (
        "0 trip_ids did not match the static trips.txt",
        "1 records took their route_id from the static trips.txt",
        "0 route_ids did not match the static routes.txt",
        "0 stop_ids did not match the static stops.txt",
        "static GTFS is current: service ends 2014-12-28, feed is from 2014-06-01",
    )


def test_unmatched_trips_routes_and_stops_and_an_expired_static_feed_are_said() -> None:
    feed = _feed(int(datetime(2015, 3, 1, tzinfo=UTC).timestamp()))
    update = _add_update(feed, "tu-1", trip_id="ghost-trip")
    update.trip.route_id = "999-423"
    _add_stop(update, "no-such-stop", 1, 0)

    parsed = parse_trip_updates(feed.SerializeToString(), static=_cairns())

    assert "route_short_name" not in parsed.rows[0]
    assert "stop_name" not in parsed.rows[0]
    assert parsed.notes == (
        "1 trip_ids did not match the static trips.txt: ['ghost-trip']",
        "1 route_ids did not match the static routes.txt: ['999-423']",
        "1 stop_ids did not match the static stops.txt: ['no-such-stop']",
        "static GTFS expired: service ended 2014-12-28, feed is from 2015-03-01",
    )


def test_the_bull_runner_static_feed_joins_its_own_route_ids() -> None:
    static = GtfsStatic.from_zip((GTFS / "bullrunner-gtfs.zip").read_bytes())
    feed = _feed(int(datetime(2017, 9, 13, tzinfo=UTC).timestamp()))
    update = _add_update(feed, "1", trip_id="1")
    _add_stop(update, "101", 1, 30)

    row = parse_trip_updates(feed.SerializeToString(), static=static).rows[0]

    assert (row["route_id"], row["route_short_name"], row["stop_name"]) == (
        "A",
        "A",
        "Math & Engineering",
    )


def test_a_cancelled_trip_without_stops_is_one_trip_level_row() -> None:
    feed = _feed()
    update = _add_update(feed, "tu-9")
    update.trip.schedule_relationship = gtfs_realtime_pb2.TripDescriptor.CANCELED

    parsed = parse_trip_updates(feed.SerializeToString())

    assert parsed.rows == [
        {
            "entity_id": "tu-9",
            "observed_at": datetime.fromtimestamp(CAIRNS_TIME, UTC),
            "trip_id": CAIRNS_TRIP,
            "trip_schedule_relationship": "CANCELED",
            "stop_update": 0,
        }
    ]
    assert parsed.notes == (
        "1 trip updates listed no stop-time updates (one trip-level record each)",
    )


def test_an_update_without_a_trip_descriptor_is_kept_and_said() -> None:
    feed = _feed()
    update = _add_update(feed, "tu-2", trip_id=None)
    update.delay = 120
    _add_stop(update, "750337", 1, 120)

    # The trip descriptor is `required`: only a partial serialisation leaves it out.
    parsed = parse_trip_updates(feed.SerializePartialToString(), static=_cairns())

    assert parsed.rows[0]["trip_delay"] == 120
    assert "trip_id" not in parsed.rows[0]
    assert "1 trip updates had no trip descriptor (kept without trip fields)" in parsed.notes
    assert _validate(parsed.rows) == (1, [])


def test_skipped_stops_update_time_and_uncertainty_are_carried() -> None:
    feed = _feed(header_time=CAIRNS_TIME)
    update = _add_update(feed, "tu-3")
    update.timestamp = CAIRNS_TIME - 30
    stop = _add_stop(update, "750000", 4, 0)
    stop.schedule_relationship = gtfs_realtime_pb2.TripUpdate.StopTimeUpdate.SKIPPED
    stop.arrival.uncertainty = 45

    row = parse_trip_updates(feed.SerializeToString()).rows[0]

    assert row["observed_at"] == datetime.fromtimestamp(CAIRNS_TIME - 30, UTC)
    assert (row["stop_schedule_relationship"], row["arrival_uncertainty"]) == ("SKIPPED", 45)


def test_entities_without_id_or_time_are_rows_the_worker_rejects_with_the_field() -> None:
    feed = _feed(header_time=None)
    _add_stop(_add_update(feed, ""), "750000", 1, 0)
    _add_stop(_add_update(feed, "tu-5"), "750000", 1, 0).arrival.time = 2**62

    parsed = parse_trip_updates(feed.SerializeToString())

    assert len(parsed.rows) == 2
    assert set(parsed.notes) >= {
        "1 entities had no id (their records lack the key field entity_id)",
        "2 trip updates had no timestamp, nor had the feed header",
        "1 timestamps were out of range (kept as numbers)",
    }
    accepted, rejected = _validate(parsed.rows)
    assert accepted == 0
    assert [reason for reason, _ in rejected] == [RejectionReason.MISSING_FIELD] * 2


def test_deleted_entities_are_skipped_and_counted() -> None:
    feed = _feed()
    _add_stop(_add_update(feed, "tu-1"), "750000", 1, 0)
    feed.entity[0].is_deleted = True

    parsed = parse_trip_updates(feed.SerializeToString())

    assert parsed.rows == []
    assert parsed.notes == ("1 trip updates were marked deleted and skipped",)


def test_a_feed_of_vehicle_positions_holds_no_trip_updates_and_says_what_it_holds() -> None:
    parsed = parse_trip_updates((GTFS / "bullrunner-vehicle-positions").read_bytes())

    assert parsed.rows == []
    assert parsed.notes == (
        "the feed holds no trip updates: its 10 entities are 10 vehicle positions",
    )


def test_the_broken_static_feed_is_a_clear_payload_error_not_a_crash() -> None:
    with pytest.raises(PayloadError) as caught:
        GtfsStatic.from_zip((GTFS / "badgtfs.zip").read_bytes())

    assert (caught.value.reason, caught.value.message) == (
        "missing-file",
        "static GTFS has no routes.txt",
    )


def test_rows_hold_only_fields_of_the_shipped_dataset_definition() -> None:
    feed = _feed()
    update = _add_update(feed, "tu-1")
    update.trip.route_id = "110-423"
    update.trip.start_time = "08:00:00"
    update.trip.start_date = "20140602"
    update.trip.direction_id = 1
    update.trip.schedule_relationship = gtfs_realtime_pb2.TripDescriptor.SCHEDULED
    update.vehicle.id = "bus"
    update.delay = 5
    stop = _add_stop(update, "750337", 1, 5)
    stop.schedule_relationship = gtfs_realtime_pb2.TripUpdate.StopTimeUpdate.SCHEDULED
    stop.arrival.uncertainty = 1
    stop.departure.time = CAIRNS_TIME + 700
    stop.departure.delay = 5
    stop.departure.uncertainty = 1
    dataset = load(GTFS_RT_TRIP_UPDATES)

    row = parse_trip_updates(feed.SerializeToString(), static=_cairns()).rows[0]

    assert set(row) == set(dataset.field_names)
    assert _validate([row]) == (1, [])
