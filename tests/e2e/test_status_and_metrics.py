"""After a known workload on `baylink up`, the services' metrics and `baylink status` say
exactly what happened: counts per dataset, region and reason, lag back to 0, snapshot age,
API requests by route and status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from baylink.runtime.ports import free_port
from baylink.runtime.state import RuntimeState
from baylink.status_model import ACCEPTED, REJECTED, parse_metrics
from tests.support.embedded import admin_headers, baylink, running_platform
from tests.support.platform import SENSOR_READINGS, reading_rows, wait_until, write_csv

pytestmark = pytest.mark.e2e
DATASET = "gba.traffic.sensor-readings"


def _workload(path: Path) -> Path:
    """30 good readings (10 per region), 2 from an unknown region, 3 too fast."""
    rows: list[dict[str, Any]] = reading_rows(35, prefix="metrics-")
    for row in rows[30:32]:
        row["region"] = "tw"
    for row in rows[32:]:
        row["speed"] = 999.0
    return write_csv(path, rows)


def _status(data_dir: Path) -> dict[str, Any]:
    result = baylink(data_dir, "status", "--json", "--interval", "0.5")
    status: dict[str, Any] = json.loads(result.stdout)
    return status


def test_metrics_and_status_count_a_known_workload_exactly(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "baylink", free_port()
    with running_platform(data_dir, port, BAYLINK_STORAGE_SNAPSHOT_INTERVAL_SECONDS="1"):
        baylink(data_dir, "dataset", "register", str(SENSOR_READINGS))
        source = _workload(tmp_path / "readings.csv")
        for _ in range(2):  # the second time every good record is a duplicate
            baylink(data_dir, "ingest", str(source), "--dataset", DATASET, "--wait", "--json")
        api, admin = f"http://127.0.0.1:{port}", admin_headers(data_dir)
        for _ in range(3):
            httpx.get(f"{api}/v1/datasets", headers=admin, timeout=30).raise_for_status()
        missing = httpx.get(f"{api}/v1/datasets/no.such.dataset", headers=admin, timeout=30)
        assert missing.status_code == 404

        wait_until(lambda: _status(data_dir)["total_lag"] == 0, 60, what="lag to return to 0")
        wait_until(
            lambda: _status(data_dir)["datasets"][DATASET]["snapshot_age_seconds"] is not None,
            60,
            what="a snapshot to be published",
        )
        status = _status(data_dir)
        state = RuntimeState.read(data_dir)
        worker_page = parse_metrics(
            httpx.get(state.metrics_urls["worker"], timeout=10).raise_for_status().text
        )

    by_region = {
        dict(labels)["region"]: value
        for (name, labels), value in worker_page.items()
        if name == ACCEPTED and dict(labels)["dataset"] == DATASET
    }
    rejected = {
        (dict(labels)["reason"], dict(labels)["region"]): value
        for (name, labels), value in worker_page.items()
        if name == REJECTED
    }
    assert by_region == {"hk": 10.0, "gd-shenzhen": 10.0, "mo": 10.0}
    # Rejections are recorded each time (they are evidence), duplicates are not stored again.
    assert rejected == {
        ("unknown-region", "gd-shenzhen"): 4.0,
        ("out-of-range", "gd-shenzhen"): 6.0,
    }
    assert status["components"] == {"api": "up", "snapshots": "up", "worker": "up"}
    readings = status["datasets"][DATASET]
    assert readings["accepted"] == 30
    assert readings["rejected"] == 10
    assert readings["rejections"] == {"out-of-range": 6, "unknown-region": 4}
    assert readings["duplicates"] == 30
    assert 0 <= readings["snapshot_age_seconds"] < 60
    assert status["total_lag"] == 0
    assert status["stalled"] == []
    assert {"topic": f"baylink.ingest.{DATASET}.v1", "partition": 0, "lag": 0} in status["lag"]
    routes = {(r["route"], r["status"]): r["requests"] for r in status["api"]}
    assert routes[("/v1/datasets", "200")] == 3
    assert routes[("/v1/datasets/{dataset_id}", "404")] == 1
