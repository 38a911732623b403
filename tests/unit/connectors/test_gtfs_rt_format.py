"""The one `gtfs-rt` format reads the entity kind its target dataset's key fields name."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.transit import gtfs_realtime_pb2

from connectors.datasets import (
    GTFS_RT_ALERTS,
    GTFS_RT_TRIP_UPDATES,
    GTFS_RT_VEHICLE_POSITIONS,
    load,
)
from connectors.errors import PayloadError
from connectors.formats import ParseOptions, format_named
from connectors.gtfs_static import GtfsStatic
from domain.dataset import DatasetDefinition

GTFS = Path(__file__).resolve().parents[2] / "fixtures" / "gtfs"
READINGS = DatasetDefinition.from_dict(
    {
        "id": "hk.traffic.readings",
        "kind": "traffic",
        "owner_region": "hk",
        "title": "Readings",
        "time_field": "at",
        "key_fields": ["sensor", "at"],
        "fields": [{"name": "sensor", "type": "string"}, {"name": "at", "type": "timestamp"}],
    }
)


def _mixed_feed() -> bytes:
    """Constructed: one vehicle position, one trip update with two stops, one alert."""
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    feed.header.timestamp = 1_505_314_375
    vehicle = feed.entity.add()
    vehicle.id = "v"
    vehicle.vehicle.vehicle.id = "1536"
    vehicle.vehicle.position.latitude = 28.06
    vehicle.vehicle.position.longitude = -82.41
    vehicle.vehicle.trip.route_id = "A"
    update = feed.entity.add()
    update.id = "t"
    update.trip_update.trip.trip_id = "1"
    for stop_id in ("101", "102"):
        update.trip_update.stop_time_update.add().stop_id = stop_id
    alert = feed.entity.add()
    alert.id = "a"
    alert.alert.informed_entity.add().route_id = "A"
    return feed.SerializeToString()


def _parse(dataset: DatasetDefinition, static: GtfsStatic | None = None) -> list[str]:
    parsed = format_named("gtfs-rt").parse(_mixed_feed(), dataset, ParseOptions(static_gtfs=static))
    return [parsed.format, *(str(sorted(row)) for row in parsed.rows)]


@pytest.mark.parametrize(
    ("name", "kind", "rows"),
    [
        (GTFS_RT_VEHICLE_POSITIONS, "gtfs-realtime/vehicle-positions", 1),
        (GTFS_RT_TRIP_UPDATES, "gtfs-realtime/trip-updates", 2),
        (GTFS_RT_ALERTS, "gtfs-realtime/alerts", 1),
    ],
)
def test_the_shipped_dataset_picks_its_entity_kind_from_one_feed(
    name: str, kind: str, rows: int
) -> None:
    parsed = _parse(load(name))

    assert parsed[0] == kind
    assert len(parsed) - 1 == rows


def test_a_registered_copy_under_another_id_picks_the_same_kind_by_its_keys() -> None:
    definition = load(GTFS_RT_TRIP_UPDATES).as_dict()
    definition["id"] = "gd-shenzhen.traffic.bus-predictions"
    definition["owner_region"] = "gd-shenzhen"

    assert _parse(DatasetDefinition.from_dict(definition))[0] == "gtfs-realtime/trip-updates"


def test_the_static_feed_given_with_the_format_is_joined() -> None:
    static = GtfsStatic.from_zip((GTFS / "bullrunner-gtfs.zip").read_bytes())

    parsed = format_named("gtfs-rt").parse(
        _mixed_feed(), load(GTFS_RT_TRIP_UPDATES), ParseOptions(static_gtfs=static)
    )

    assert [row.get("stop_name") for row in parsed.rows] == ["Math & Engineering", "Library LIB"]


def test_a_dataset_keyed_like_no_entity_kind_is_refused_naming_the_keys() -> None:
    with pytest.raises(PayloadError) as caught:
        _parse(READINGS)

    assert caught.value.reason == "unknown-entity-kind"
    assert "['sensor', 'at']" in caught.value.message
    assert "'stop_update' (trip-updates)" in caught.value.message


@pytest.mark.parametrize("dataset", [load(GTFS_RT_ALERTS), READINGS])
def test_a_truncated_feed_is_reported_as_truncated_whatever_the_dataset(
    dataset: DatasetDefinition,
) -> None:
    data = (GTFS / "bullrunner-vehicle-positions").read_bytes()

    with pytest.raises(PayloadError) as caught:
        format_named("gtfs-rt").parse(data[:200], dataset, ParseOptions())

    assert caught.value.reason == "truncated-protobuf"
