"""The catalog, snapshot manifests with fetchable file URLs, and record provenance."""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit
from urllib.request import url2pathname

import httpx
import pytest

from tests.integration.api.conftest import ServedReadings
from tests.integration.api.readings import SECOND_SNAPSHOT_AFTER, StoredReadings

pytestmark = pytest.mark.integration

DATASET = "gba.traffic.sensor-readings"


async def test_the_catalog_lists_the_dataset_with_its_newest_snapshot(
    api: httpx.AsyncClient, stored: StoredReadings
) -> None:
    body = (await api.get("/v1/datasets")).json()

    (dataset,) = body["datasets"]
    assert dataset["id"] == DATASET
    assert dataset["owner_region"] == "gd-shenzhen"
    assert dataset["classification"] == "sensitive"
    assert dataset["title"]["zh-Hant"] == "道路感應器讀數"
    assert dataset["latest_snapshot"]["snapshot_id"] == stored.snapshot_ids[-1]


async def test_a_dataset_describes_its_schema_and_freshness(
    api: httpx.AsyncClient, stored: StoredReadings
) -> None:
    body = (await api.get(f"/v1/datasets/{DATASET}")).json()

    assert body["time_field"] == "observed_at"
    assert body["key_fields"] == ["sensor_id", "observed_at"]
    assert body["geometry"] == {"lat": "lat", "lon": "lon", "field": None, "crs": "EPSG:4326"}
    assert [f["name"] for f in body["fields"]] == list(stored.dataset.field_names)
    assert [c["name"] for c in body["columns"]] == [
        "record_id",
        "region",
        *stored.dataset.field_names,
    ]
    assert body["snapshot_count"] == 2
    freshness = body["freshness"]
    assert freshness["snapshot_position"] == body["latest_snapshot"]["last_position"]
    assert freshness["store_position"] > freshness["snapshot_position"]
    assert freshness["snapshot_published_at"] == body["latest_snapshot"]["published_at"]


async def test_the_snapshots_cover_the_stored_records_except_the_tail(
    api: httpx.AsyncClient, stored: StoredReadings
) -> None:
    body = (await api.get(f"/v1/datasets/{DATASET}/snapshots")).json()

    snapshots = body["snapshots"]
    assert [s["snapshot_id"] for s in snapshots] == stored.snapshot_ids
    assert sum(s["row_count"] for s in snapshots) == len(stored.records) - len(stored.tail_ids)
    assert snapshots[1]["first_position"] == snapshots[0]["last_position"] + 1


async def test_every_file_of_a_manifest_can_be_fetched_from_its_url_and_matches_its_sha256(
    api: httpx.AsyncClient, stored: StoredReadings, served_readings: ServedReadings
) -> None:
    href = (await api.get(f"/v1/datasets/{DATASET}/snapshots")).json()["snapshots"][0]["href"]

    manifest = (await api.get(href)).json()

    assert manifest["snapshot_id"] == stored.snapshot_ids[0]
    assert sum(f["rows"] for f in manifest["files"]) == manifest["row_count"]
    assert {f["region"] for f in manifest["files"]} == {"hk", "gd-shenzhen", "mo"}
    for file in manifest["files"]:
        content = fetch(file["url"])
        assert len(content) == file["bytes"]
        assert hashlib.sha256(content).hexdigest() == file["sha256"]
    assert (
        hashlib.sha256(fetch(manifest["manifest_url"])).hexdigest() == manifest["manifest_sha256"]
    )


def fetch(url: str) -> bytes:
    parts = urlsplit(url)
    if parts.scheme == "file":
        with open(url2pathname(parts.path), "rb") as file:
            return file.read()
    response = httpx.get(url)
    response.raise_for_status()
    return response.content


async def test_a_snapshotted_record_names_its_batch_provenance_and_snapshot(
    api: httpx.AsyncClient, stored: StoredReadings
) -> None:
    record = stored.records[0]  # in the first message, so in the first snapshot

    body = (await api.get(f"/v1/records/{record['record_id']}/provenance")).json()

    assert body["dataset_id"] == DATASET
    assert body["region"] == record["region"]
    assert body["provenance"]["source_uri"] == stored.source_of[record["record_id"]]
    assert body["snapshot_id"] == stored.snapshot_ids[0]
    assert body["batch"]["version"] == 1
    assert len(body["batch"]["hash"]) == 64
    assert body["batch"]["log_position"] is None


async def test_a_record_in_the_tail_names_the_log_position_of_its_batch(
    api: httpx.AsyncClient, stored: StoredReadings
) -> None:
    record = stored.records[SECOND_SNAPSHOT_AFTER]  # first row of the first tail message
    assert record["record_id"] in stored.tail_ids
    latest = (await api.get(f"/v1/datasets/{DATASET}")).json()["freshness"]

    body = (await api.get(f"/v1/records/{record['record_id']}/provenance")).json()

    assert body["snapshot_id"] is None
    assert body["provenance"]["source_uri"] == "file:///readings-16.csv"
    assert latest["snapshot_position"] < body["batch"]["log_position"]
    assert body["batch"]["log_position"] <= latest["store_position"]
