"""The constructed TripUpdates and Alerts fixtures: what gtfs_constructed builds, and what they
give when joined with the real Cairns static feed."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.datasets import GTFS_RT_ALERTS, GTFS_RT_TRIP_UPDATES, load
from connectors.formats import ParseOptions, format_named
from connectors.gtfs_static import GtfsStatic
from tests.unit.connectors import gtfs_constructed

GTFS = Path(__file__).resolve().parents[2] / "fixtures" / "gtfs"
CAIRNS = GtfsStatic.from_zip((GTFS / "cairns-gtfs-no-stop-times.zip").read_bytes())


@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("constructed-trip-updates.pb", gtfs_constructed.trip_updates),
        ("constructed-alerts.pb", gtfs_constructed.alerts),
    ],
)
def test_committed_fixture_is_what_the_builder_builds(name: str, build: object) -> None:
    assert callable(build)
    assert (GTFS / name).read_bytes() == build()


def test_constructed_trip_updates_join_the_cairns_feed_and_say_what_did_not_match() -> None:
    parsed = format_named("gtfs-rt").parse(
        (GTFS / "constructed-trip-updates.pb").read_bytes(),
        load(GTFS_RT_TRIP_UPDATES),
        ParseOptions(static_gtfs=CAIRNS),
    )

    assert len(parsed.rows) == 53
    first = parsed.rows[0]
    assert (first["route_id"], first["route_short_name"]) == ("110-423", "110")
    assert (first["stop_id"], first["stop_name"]) == ("750101", "Aeroglen Dr N47")
    assert parsed.notes == (
        "1 trip updates listed no stop-time updates (one trip-level record each)",
        "1 trip_ids did not match the static trips.txt: ['CNS2014-retired-trip']",
        "50 records took their route_id from the static trips.txt",
        "0 route_ids did not match the static routes.txt",
        "1 stop_ids did not match the static stops.txt: ['759999']",
        "static GTFS is current: service ends 2014-12-28, feed is from 2014-06-01",
    )


def test_constructed_alerts_join_the_cairns_feed_and_say_what_did_not_match() -> None:
    parsed = format_named("gtfs-rt").parse(
        (GTFS / "constructed-alerts.pb").read_bytes(),
        load(GTFS_RT_ALERTS),
        ParseOptions(static_gtfs=CAIRNS),
    )

    assert [(row["alert_id"], row["informed_entity"]) for row in parsed.rows] == [
        ("roadworks-sheridan", 1),
        ("roadworks-sheridan", 2),
        ("detour-110", 1),
        ("detour-110", 2),
        ("detour-110", 3),
        ("strike", 1),
        ("strike", 2),
    ]
    assert parsed.rows[0]["stop_name"] == "Sheridan St C204 (Mother of Good Counsel)"
    assert parsed.rows[2]["route_short_name"] == "110"
    assert parsed.notes == (
        "3 alerts had translations in other languages, not kept",
        "1 route_ids did not match the static routes.txt: ['999-423']",
        "0 stop_ids did not match the static stops.txt",
        "0 trip_ids did not match the static trips.txt",
        "static GTFS is current: service ends 2014-12-28, feed is from 2014-06-01",
    )
