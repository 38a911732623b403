"""`baylink demo` brings up the platform with sample data a new user can query at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from baylink.runtime.ports import free_port
from tests.support.embedded import admin_headers
from tests.support.platform import wait_until

pytestmark = pytest.mark.e2e


def test_demo_serves_sample_traffic_geospatial_and_economic_data(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAYLINK_")}
    log = (tmp_path / "demo.log").open("w")
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "baylink",
            "demo",
            "--data-dir",
            str(tmp_path / "demo"),
            "--api-port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until(
            lambda: "Three queries to try" in (tmp_path / "demo.log").read_text(),
            240,
            what="the demo to finish feeding its data",
        )
        admin = admin_headers(tmp_path / "demo")
        page = httpx.get(
            f"{api}/datasets/gba.traffic.sensor-readings/records",
            params={"limit": 10_000},
            headers=admin,
            timeout=30,
        ).json()
        vehicles = httpx.get(
            f"{api}/datasets/hk.traffic.vehicle-positions/records", headers=admin, timeout=30
        ).json()
        anonymous = httpx.get(f"{api}/datasets", timeout=30)
        speed_map = httpx.get(
            f"{api}/datasets/hk.traffic.road-speed-map/records", headers=admin, timeout=30
        ).json()
        anchor = httpx.get(
            f"{api}/datasets/hk.geo.traffic-detectors/records",
            params={"bbox": "114.1520,22.2478,114.1530,22.2484"},
            headers=admin,
            timeout=30,
        ).json()
        rates = httpx.get(
            f"{api}/datasets/hk.economic.sdmx-observations/records",
            params={"limit": 1000},
            headers=admin,
            timeout=30,
        ).json()
    finally:
        demo.send_signal(signal.SIGTERM)
        exit_code = demo.wait(timeout=60)
        log.close()

    assert len(page["records"]) == 3_000
    assert {r["region"] for r in page["records"]} == {"gd-shenzhen", "hk", "mo"}
    assert len(vehicles["records"]) == 10
    assert len(speed_map["records"]) == 5
    # The detector given as HK 1980 Grid E 833758 / N 812147 is served at its WGS-84 place.
    assert [r["detector_id"] for r in anchor["records"]] == ["AID01101"]
    lon, lat = anchor["records"][0]["location"]["coordinates"]
    assert abs(lat - 22.248091) < 1e-5
    assert abs(lon - 114.152525) < 1e-5
    assert len(rates["records"]) == 252
    assert anonymous.status_code == 401
    assert "Authorization: Bearer $(cat " in (tmp_path / "demo.log").read_text()
    assert (tmp_path / "demo" / "admin-token").stat().st_mode & 0o777 == 0o600
    assert exit_code == 0
