"""GTFS-Realtime Alerts: constructed feeds (built here with gtfs_realtime_pb2) joined with the
real Cairns static feed shipped in gtfs-kit."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from google.transit import gtfs_realtime_pb2

from connectors.datasets import GTFS_RT_ALERTS, load
from connectors.gtfs_alerts import parse_alerts
from connectors.gtfs_static import GtfsStatic
from domain.record import RecordValidator
from domain.region import RegionRegistry
from domain.rejection import RejectionReason

GTFS = Path(__file__).resolve().parents[2] / "fixtures" / "gtfs"
FEED_TIME = int(datetime(2014, 6, 1, 22, tzinfo=UTC).timestamp())
HOUR = 3600


def _cairns() -> GtfsStatic:
    return GtfsStatic.from_zip((GTFS / "cairns-gtfs-no-stop-times.zip").read_bytes())


def _feed(header_time: int | None = FEED_TIME) -> gtfs_realtime_pb2.FeedMessage:
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    if header_time is not None:
        feed.header.timestamp = header_time
    return feed


def _add_alert(feed: gtfs_realtime_pb2.FeedMessage, alert_id: str) -> gtfs_realtime_pb2.Alert:
    entity = feed.entity.add()
    entity.id = alert_id
    alert = entity.alert
    alert.cause = gtfs_realtime_pb2.Alert.CONSTRUCTION
    alert.effect = gtfs_realtime_pb2.Alert.DETOUR
    return alert


def _say(text: gtfs_realtime_pb2.TranslatedString, value: str, language: str = "") -> None:
    translation = text.translation.add()
    translation.text = value
    if language:
        translation.language = language


def _validate(rows: list[dict[str, object]]) -> tuple[int, list[tuple[RejectionReason, str]]]:
    validator = RecordValidator(load(GTFS_RT_ALERTS), RegionRegistry.default())
    batch = validator.validate(rows, "hk", datetime(2030, 1, 1, tzinfo=UTC))
    return len(batch.accepted), [(r.reason, r.message) for r in batch.rejected]


def test_each_informed_entity_of_an_alert_becomes_one_row() -> None:
    feed = _feed()
    alert = _add_alert(feed, "works-1")
    alert.severity_level = gtfs_realtime_pb2.Alert.WARNING
    _say(alert.header_text, "Stop moved for roadworks")
    _say(alert.description_text, "Use the temporary stop 50 m north.")
    alert.informed_entity.add().route_id = "110-423"
    alert.informed_entity.add().stop_id = "750000"

    parsed = parse_alerts(feed.SerializeToString())

    assert parsed.format == "gtfs-realtime/alerts"
    common = {
        "alert_id": "works-1",
        "observed_at": datetime.fromtimestamp(FEED_TIME, UTC),
        "active_periods": 0,
        "cause": "CONSTRUCTION",
        "effect": "DETOUR",
        "severity_level": "WARNING",
        "languages": "-",
        "header_text": "Stop moved for roadworks",
        "description_text": "Use the temporary stop 50 m north.",
    }
    assert parsed.rows == [
        {**common, "informed_entity": 1, "route_id": "110-423"},
        {**common, "informed_entity": 2, "stop_id": "750000"},
    ]
    assert parsed.notes == ()
    assert _validate(parsed.rows) == (2, [])


def test_the_cairns_static_feed_names_routes_and_stops_and_lists_what_did_not_match() -> None:
    feed = _feed()
    alert = _add_alert(feed, "a1")
    alert.informed_entity.add().route_id = "110-423"
    alert.informed_entity.add().stop_id = "750000"
    alert.informed_entity.add().route_id = "999-423"
    alert.informed_entity.add().trip.trip_id = "ghost-trip"

    parsed = parse_alerts(feed.SerializeToString(), static=_cairns())

    assert parsed.rows[0]["route_short_name"] == "110"
    assert parsed.rows[1]["stop_name"] == "Cedar Rd (Palm Cove) - Hail and Ride Location"
    assert "route_short_name" not in parsed.rows[2]
    assert parsed.notes == (
        "1 route_ids did not match the static routes.txt: ['999-423']",
        "0 stop_ids did not match the static stops.txt",
        "1 trip_ids did not match the static trips.txt: ['ghost-trip']",
        "static GTFS is current: service ends 2014-12-28, feed is from 2014-06-01",
    )


def test_english_is_chosen_among_translations_and_the_others_are_said() -> None:
    feed = _feed()
    alert = _add_alert(feed, "a1")
    _say(alert.header_text, "改道", "zh-HK")
    _say(alert.header_text, "Diversion", "en")
    _say(alert.description_text, "請改用臨時車站", "zh-HK")
    _say(alert.description_text, "Use the temporary stop", "en")
    _say(alert.url, "https://example.org/notice")
    alert.informed_entity.add().agency_id = "KMB"

    parsed = parse_alerts(feed.SerializeToString())

    row = parsed.rows[0]
    assert (row["language"], row["languages"]) == ("en", "zh-HK,en")
    assert (row["header_text"], row["description_text"]) == ("Diversion", "Use the temporary stop")
    assert row["url"] == "https://example.org/notice"
    assert parsed.notes == ("1 alerts had translations in other languages, not kept",)


def test_the_active_period_holding_the_feed_time_is_chosen() -> None:
    feed = _feed()
    alert = _add_alert(feed, "a1")
    for start, end in ((-5 * HOUR, -4 * HOUR), (-HOUR, HOUR), (4 * HOUR, 5 * HOUR)):
        period = alert.active_period.add()
        period.start, period.end = FEED_TIME + start, FEED_TIME + end
    alert.informed_entity.add().route_id = "110-423"

    row = parse_alerts(feed.SerializeToString()).rows[0]

    assert row["active_periods"] == 3
    assert row["active_start"] == datetime.fromtimestamp(FEED_TIME - HOUR, UTC)
    assert row["active_end"] == datetime.fromtimestamp(FEED_TIME + HOUR, UTC)


def test_an_alert_informing_no_entity_is_one_row_and_said() -> None:
    feed = _feed()
    _add_alert(feed, "a1")
    empty = _add_alert(feed, "a2")
    empty.informed_entity.add()

    parsed = parse_alerts(feed.SerializeToString())

    assert [(row["alert_id"], row["informed_entity"]) for row in parsed.rows] == [
        ("a1", 0),
        ("a2", 1),
    ]
    assert parsed.notes == (
        "1 alerts informed no entity (one record each, informed_entity 0)",
        "1 informed entities selected nothing (no agency, route, trip or stop)",
    )


def test_alerts_in_a_feed_without_header_time_are_rejected_for_lack_of_observed_at() -> None:
    feed = _feed(header_time=None)
    _add_alert(feed, "a1").informed_entity.add().route_id = "R"

    parsed = parse_alerts(feed.SerializeToString())

    assert "observed_at" not in parsed.rows[0]
    assert parsed.notes == (
        "1 alerts came in a feed whose header has no timestamp (no observed_at)",
    )
    accepted, rejected = _validate(parsed.rows)
    assert (accepted, rejected[0][0]) == (0, RejectionReason.MISSING_FIELD)


def test_a_feed_without_alerts_says_what_it_holds() -> None:
    parsed = parse_alerts((GTFS / "bullrunner-vehicle-positions").read_bytes())

    assert parsed.rows == []
    assert parsed.notes == ("the feed holds no alerts: its 10 entities are 10 vehicle positions",)


def test_rows_hold_only_fields_of_the_shipped_dataset_definition() -> None:
    feed = _feed()
    alert = _add_alert(feed, "a1")
    alert.severity_level = gtfs_realtime_pb2.Alert.SEVERE
    period = alert.active_period.add()
    period.start, period.end = FEED_TIME - HOUR, FEED_TIME + HOUR
    _say(alert.header_text, "Diversion", "en")
    _say(alert.description_text, "Use stop 750000", "en")
    _say(alert.url, "https://example.org/a1", "en")
    selector = alert.informed_entity.add()
    selector.agency_id = "qconnect"
    selector.route_id = "110-423"
    selector.route_type = 3
    selector.direction_id = 0
    selector.stop_id = "750000"
    selector.trip.trip_id = "CNS2014-CNS_MUL-Weekday-00-4165878"

    row = parse_alerts(feed.SerializeToString(), static=_cairns()).rows[0]

    assert set(row) == set(load(GTFS_RT_ALERTS).field_names)
    assert _validate([row]) == (1, [])


def test_an_alert_with_only_a_description_takes_its_language_from_it() -> None:
    feed = _feed()
    alert = _add_alert(feed, "a1")
    _say(alert.description_text, "Lift out of service", "en")
    alert.informed_entity.add().stop_id = "750000"

    row = parse_alerts(feed.SerializeToString()).rows[0]

    assert (row["language"], row["languages"]) == ("en", "en")
    assert row["description_text"] == "Lift out of service"
    assert "header_text" not in row
