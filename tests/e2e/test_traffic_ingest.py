"""Traffic feeds through `baylink up`: TD XML and GTFS-Realtime trip updates, ingested with the
CLI into the shipped dataset definitions and read back through the query API."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from baylink.runtime.ports import free_port
from tests.support.embedded import (
    admin_headers,
    baylink,
    clean_env,
    running_platform,
    served_records,
)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DATASETS = REPO / "connectors" / "datasets"
FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    data_dir = tmp_path_factory.mktemp("traffic") / "baylink"
    port = free_port()
    with running_platform(data_dir, port):
        for name in ("td-speedmap", "td-detector", "gtfs-rt-trip-updates"):
            baylink(data_dir, "dataset", "register", str(DATASETS / f"{name}.yaml"))
        yield data_dir, port


def _ingest(data_dir: Path, *args: str) -> dict[str, object]:
    outcome = json.loads(baylink(data_dir, "ingest", *args, "--wait", "--json").stdout)
    assert isinstance(outcome, dict)
    return outcome


def test_a_speed_map_is_stored_and_served_with_times_in_utc(platform: tuple[Path, int]) -> None:
    data_dir, port = platform

    outcome = _ingest(
        data_dir,
        str(FIXTURES / "td" / "speedmap.xml"),
        "--dataset",
        "hk.traffic.road-speed-map",
        "--format",
        "td-speedmap",
    )

    assert (outcome["accepted"], outcome["rejected"]) == (5, 0)
    page = (
        httpx.get(
            f"http://127.0.0.1:{port}/v1/datasets/hk.traffic.road-speed-map/records",
            params={"limit": "10"},
            headers=admin_headers(data_dir),
            timeout=30,
        )
        .raise_for_status()
        .json()
    )
    by_link = {record["link_id"]: record for record in page["records"]}
    assert by_link["3001-30016"]["speed"] == 55.0
    assert by_link["3001-30016"]["captured_at"].startswith("2025-08-04T23:52:35")
    assert by_link["5001-50013"]["speed"] is None
    assert {record["region"] for record in page["records"]} == {"hk"}


def test_a_bad_link_is_rejected_with_its_reason_and_the_rest_are_stored(
    platform: tuple[Path, int], tmp_path: Path
) -> None:
    data_dir, _ = platform
    damaged = (FIXTURES / "td" / "speedmap.xml").read_text(encoding="utf-8")
    damaged = damaged.replace(
        "<TRAFFIC_SPEED>73</TRAFFIC_SPEED>", "<TRAFFIC_SPEED>n/a</TRAFFIC_SPEED>"
    )
    damaged = damaged.replace("07:5", "08:5")  # new capture times: not duplicates
    path = tmp_path / "speedmap.xml"
    path.write_text(damaged, encoding="utf-8")

    outcome = _ingest(
        data_dir, str(path), "--dataset", "hk.traffic.road-speed-map", "--format", "td-speedmap"
    )

    assert (outcome["accepted"], outcome["rejected"]) == (4, 1)
    assert outcome["reasons"] == {"wrong-type": 1}


def _records(platform: tuple[Path, int], dataset: str) -> list[dict[str, object]]:
    return served_records(*platform, dataset)


def test_detector_readings_are_stored_one_per_lane_and_period(platform: tuple[Path, int]) -> None:
    data_dir, _port = platform

    outcome = _ingest(
        data_dir,
        str(FIXTURES / "td" / "detector.xml"),
        "--dataset",
        "hk.traffic.detector-readings",
        "--format",
        "td-detector",
    )

    assert (outcome["accepted"], outcome["rejected"]) == (6, 0)
    # Both period times are served as UTC times, the end after the start.
    records = _records(platform, "hk.traffic.detector-readings")
    assert len(records) == 6
    for record in records:
        start, end = str(record["period_start"]), str(record["period_end"])
        assert start.endswith(("Z", "+00:00"))
        assert end > start


def test_trip_updates_joined_with_a_static_feed_are_stored(platform: tuple[Path, int]) -> None:
    data_dir, _port = platform

    outcome = _ingest(
        data_dir,
        str(FIXTURES / "gtfs" / "constructed-trip-updates.pb"),
        "--dataset",
        "hk.traffic.trip-updates",
        "--format",
        "gtfs-rt",
        "--static-gtfs",
        str(FIXTURES / "gtfs" / "cairns-gtfs-no-stop-times.zip"),
    )

    assert (outcome["accepted"], outcome["rejected"]) == (53, 0)
    assert len(_records(platform, "hk.traffic.trip-updates")) == 53


def test_an_xml_file_without_format_is_refused_in_one_line(platform: tuple[Path, int]) -> None:
    data_dir, _ = platform

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "baylink",
            "ingest",
            str(FIXTURES / "td" / "speedmap.xml"),
            "--dataset",
            "hk.traffic.road-speed-map",
        ],
        env=clean_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 2
    assert "pass --format" in result.stderr
    assert "td-speedmap" in result.stderr


def test_the_broken_static_feed_is_refused_in_one_line_naming_what_is_missing(
    platform: tuple[Path, int],
) -> None:
    data_dir, _ = platform

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "baylink",
            "ingest",
            str(FIXTURES / "gtfs" / "constructed-trip-updates.pb"),
            "--dataset",
            "hk.traffic.trip-updates",
            "--static-gtfs",
            str(FIXTURES / "gtfs" / "badgtfs.zip"),
        ],
        env=clean_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"baylink: error: {FIXTURES / 'gtfs' / 'badgtfs.zip'}: static GTFS has no routes.txt"
    ]
