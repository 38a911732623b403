"""The GTFS-Realtime connector read against a real Bull Runner feed and built feeds."""

from __future__ import annotations

import io
import struct
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.transit import gtfs_realtime_pb2

from connectors.datasets import GTFS_RT_VEHICLE_POSITIONS, load
from connectors.errors import PayloadError
from connectors.gtfs_realtime import GtfsStatic, parse_vehicle_positions

GTFS = Path(__file__).resolve().parents[2] / "fixtures" / "gtfs"
FEED_TIME = datetime(2017, 9, 13, 14, 52, 55, tzinfo=UTC)  # header timestamp 1505314375


def _real_feed() -> bytes:
    return (GTFS / "bullrunner-vehicle-positions").read_bytes()


def _real_static() -> GtfsStatic:
    return GtfsStatic.from_zip((GTFS / "bullrunner-gtfs.zip").read_bytes())


def _feed(header_time: int | None = 1_700_000_000) -> gtfs_realtime_pb2.FeedMessage:
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    if header_time is not None:
        feed.header.timestamp = header_time
    return feed


def _add_vehicle(
    feed: gtfs_realtime_pb2.FeedMessage, entity_id: str, vehicle_id: str = ""
) -> gtfs_realtime_pb2.VehiclePosition:
    entity = feed.entity.add()
    entity.id = entity_id
    if vehicle_id:
        entity.vehicle.vehicle.id = vehicle_id
    entity.vehicle.position.latitude = 22.3
    entity.vehicle.position.longitude = 114.17
    return entity.vehicle


def _as_float32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def test_vehicle_positions_yield_one_row_per_positioned_vehicle() -> None:
    parsed = parse_vehicle_positions(_real_feed())

    assert parsed.format == "gtfs-realtime/vehicle-positions"
    assert [row["vehicle_id"] for row in parsed.rows] == [
        "1536", "1537", "1331", "2252", "3004", "1538", "3001", "3002", "1124", "9012",
    ]  # fmt: skip
    assert [row["entity_id"] for row in parsed.rows] == [str(n) for n in range(1, 11)]
    assert parsed.notes == ()


def test_vehicle_position_row_carries_the_values_in_the_feed() -> None:
    first = parse_vehicle_positions(_real_feed()).rows[0]

    # Read from the file: latitude 28.0662212, longitude -82.4176941, bearing 180, route F.
    assert first == {
        "vehicle_id": "1536",
        "observed_at": FEED_TIME,
        "lat": pytest.approx(28.0662212, abs=1e-6),
        "lon": pytest.approx(-82.4176941, abs=1e-6),
        "bearing": 180.0,
        "route_id": "F",
        "occupancy_status": "EMPTY",
        "entity_id": "1",
    }


def test_coordinates_are_the_float32_the_producer_sent_without_invented_digits() -> None:
    last = parse_vehicle_positions(_real_feed()).rows[-1]

    assert _as_float32(float(str(last["lat"]))) == _as_float32(28.0573)
    assert _as_float32(float(str(last["lon"]))) == _as_float32(-82.4137115)
    assert len(str(last["lat"])) <= len("28.0573000")


def test_absent_speed_trip_and_stop_are_omitted_not_defaulted() -> None:
    for row in parse_vehicle_positions(_real_feed()).rows:
        assert not {"speed", "trip_id", "stop_id", "current_status"} & row.keys()


def test_rows_hold_only_fields_of_the_shipped_dataset_definition() -> None:
    dataset = load(GTFS_RT_VEHICLE_POSITIONS)
    required = {field.name for field in dataset.fields if field.required}

    for row in parse_vehicle_positions(_real_feed(), static=_real_static()).rows:
        assert set(row) <= set(dataset.field_names)
        assert required <= set(row)


def test_shipped_dataset_definition_describes_hong_kong_vehicle_positions() -> None:
    dataset = load(GTFS_RT_VEHICLE_POSITIONS)

    assert dataset.id == "hk.traffic.vehicle-positions"
    assert dataset.owner_region == "hk"
    assert set(dataset.title) == {"en", "zh-Hant", "zh-Hans"}
    assert dataset.key_fields == ("vehicle_id", "observed_at")
    assert dataset.geometry is not None
    assert dataset.geometry.crs == "EPSG:4326"
    assert (dataset.field("lat").minimum, dataset.field("lat").maximum) == (-90, 90)
    assert (dataset.field("lon").minimum, dataset.field("lon").maximum) == (-180, 180)


def test_static_gtfs_adds_route_short_names_and_says_it_is_current() -> None:
    parsed = parse_vehicle_positions(_real_feed(), static=_real_static())

    assert all(row["route_short_name"] == row["route_id"] for row in parsed.rows)
    assert "0 route_ids did not match the static routes.txt" in parsed.notes
    assert any("current" in note and "2020-12-31" in note for note in parsed.notes)


def test_static_gtfs_reports_unmatched_routes_and_an_expired_calendar() -> None:
    feed = _feed(header_time=int(datetime(2024, 5, 1, tzinfo=UTC).timestamp()))
    _add_vehicle(feed, "1", "bus-1").trip.route_id = "Z"
    _add_vehicle(feed, "2", "bus-2").trip.route_id = "A"

    parsed = parse_vehicle_positions(feed.SerializeToString(), static=_real_static())

    assert "route_short_name" not in parsed.rows[0]
    assert parsed.rows[1]["route_short_name"] == "A"
    assert "1 route_ids did not match the static routes.txt: ['Z']" in parsed.notes
    assert any(note.startswith("static GTFS expired") for note in parsed.notes)


def test_static_feed_info_end_date_wins_over_the_calendar() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("routes.txt", "\ufeffroute_id, route_short_name\n7, 7X\n")
        zipped.writestr("stops.txt", "stop_id,stop_name\nS1,Central\n")
        zipped.writestr("feed_info.txt", "feed_publisher_name,feed_end_date\nTD,20250630\n")
        zipped.writestr("calendar.txt", "service_id,start_date,end_date\nWK,20240101,20301231\n")

    static = GtfsStatic.from_zip(archive.getvalue())

    assert static.route_short_names == {"7": "7X"}
    assert static.stop_ids == frozenset({"S1"})
    assert str(static.service_end) == "2025-06-30"


def test_static_gtfs_that_is_not_a_zip_or_lacks_routes_is_a_payload_error() -> None:
    with pytest.raises(PayloadError) as not_zip:
        GtfsStatic.from_zip(b"route_id,route_short_name\n")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("stops.txt", "stop_id\nS1\n")
    with pytest.raises(PayloadError) as no_routes:
        GtfsStatic.from_zip(archive.getvalue())

    assert not_zip.value.reason == "not-zip"
    assert (no_routes.value.reason, str(no_routes.value)) == (
        "missing-file",
        "static GTFS has no routes.txt",
    )


def test_truncated_feed_is_reported_as_truncated_protobuf() -> None:
    data = _real_feed()

    with pytest.raises(PayloadError) as caught:
        parse_vehicle_positions(data[: len(data) // 2])

    assert caught.value.reason == "truncated-protobuf"
    assert f"truncated at byte {len(data) // 2}" in str(caught.value)


def test_bytes_that_are_not_protobuf_are_reported_as_bad_protobuf() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_vehicle_positions(b"<html><body>502 Bad Gateway</body></html>")

    assert caught.value.reason == "bad-protobuf"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty-payload"),
        (b"\x12\x02\x0a\x00", "missing-header"),  # one entity, no header
        (b"\x0a\x02\x18\x01", "missing-header"),  # header without gtfs_realtime_version
    ],
)
def test_payload_that_is_not_a_feed_message_is_rejected_whole(data: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_vehicle_positions(data)

    assert caught.value.reason == reason


def test_entities_without_a_position_are_counted_in_notes_not_rows() -> None:
    feed = _feed()
    _add_vehicle(feed, "1", "bus-1")
    no_position = feed.entity.add()
    no_position.id = "2"
    no_position.vehicle.vehicle.id = "bus-2"
    trip_update = feed.entity.add()
    trip_update.id = "3"
    trip_update.trip_update.trip.trip_id = "t3"

    parsed = parse_vehicle_positions(feed.SerializeToString())

    assert [row["vehicle_id"] for row in parsed.rows] == ["bus-1"]
    assert set(parsed.notes) == {
        "1 entities had no vehicle position",
        "1 entities were not vehicle positions",
    }


def test_vehicle_timestamp_wins_over_the_header_and_optional_fields_are_carried() -> None:
    feed = _feed(header_time=1_700_000_000)
    vehicle = _add_vehicle(feed, "e1", "bus-9")
    vehicle.timestamp = 1_700_000_042
    vehicle.position.speed = 12.5
    vehicle.position.bearing = 90
    vehicle.trip.trip_id = "trip-1"
    vehicle.stop_id = "S1"
    vehicle.current_status = gtfs_realtime_pb2.VehiclePosition.STOPPED_AT

    row = parse_vehicle_positions(feed.SerializeToString()).rows[0]

    assert row["observed_at"] == datetime.fromtimestamp(1_700_000_042, UTC)
    assert (row["speed"], row["bearing"]) == (12.5, 90.0)
    assert (row["trip_id"], row["stop_id"]) == ("trip-1", "S1")
    assert row["current_status"] == "STOPPED_AT"


def test_vehicle_id_falls_back_to_the_entity_id() -> None:
    feed = _feed()
    _add_vehicle(feed, "entity-7")

    row = parse_vehicle_positions(feed.SerializeToString()).rows[0]

    assert (row["vehicle_id"], row["entity_id"]) == ("entity-7", "entity-7")


def test_missing_and_impossible_timestamps_are_left_for_the_worker_to_reject() -> None:
    feed = _feed(header_time=None)
    _add_vehicle(feed, "1", "bus-1")
    _add_vehicle(feed, "2", "bus-2").timestamp = 2**63

    parsed = parse_vehicle_positions(feed.SerializeToString())

    assert "observed_at" not in parsed.rows[0]
    assert parsed.rows[1]["observed_at"] == 2**63
    assert "1 vehicles had no timestamp, nor had the feed header" in parsed.notes
    assert "1 timestamps were out of range (kept as numbers)" in parsed.notes


def test_text_that_is_not_utf8_is_replaced_and_noted() -> None:
    feed = _feed()
    _add_vehicle(feed, "1", "ab")
    data = feed.SerializeToString().replace(b"ab", b"\xff\xfe")

    parsed = parse_vehicle_positions(data)

    assert parsed.rows[0]["vehicle_id"] == "\ufffd\ufffd"
    assert any("not UTF-8" in note for note in parsed.notes)
