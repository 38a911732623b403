"""`baylink demo`: the platform on the embedded default, fed with bundled sample data.

It starts `baylink up`, then uses the same commands a user would (dataset register, ingest)
and prints where to look and what to ask.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from importlib.resources import as_file, files
from pathlib import Path
from typing import Annotated

import httpx
import typer

from baylink.errors import BaylinkCliError
from baylink.runtime.admin_token import admin_token_path, configured_admin_token
from baylink.runtime.state import state_path

DEMO_REGIONS = ("gd-shenzhen", "hk", "mo")
READINGS = "gba.traffic.sensor-readings"
VEHICLES = "hk.traffic.vehicle-positions"
SPEED_MAP = "hk.traffic.road-speed-map"
DETECTORS = "hk.geo.traffic-detectors"
EXCHANGE_RATES = "hk.economic.sdmx-observations"
# Shipped dataset definitions and bundled files, each ingested as a user would.
SHIPPED = (
    ("td-speedmap.yaml", "td-speedmap.xml", SPEED_MAP, "td-speedmap"),
    ("hk-traffic-detectors.yaml", "hk-detectors-hk1980.geojson", DETECTORS, "geojson"),
    ("sdmx-observations.yaml", "ecb-exchange-rates.xml", EXCHANGE_RATES, "sdmx"),
)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    data_dir: Annotated[Path, typer.Option(help="Where the demo platform keeps its data.")] = Path(
        "var/baylink-demo"
    ),
    api_port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the API.")] = 8000,
) -> None:
    """Run the platform and ingest sample traffic data for three regions."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "baylink",
            "up",
            "--data-dir",
            str(data_dir),
            "--api-port",
            str(api_port),
        ],
        env=_env(data_dir),
    )
    signal.signal(signal.SIGTERM, lambda *_: up.terminate())
    try:
        api = f"http://127.0.0.1:{api_port}"
        _wait_until_ready(up, data_dir, api)
        _feed(data_dir)
        _print_guide(api, admin_token_path(data_dir))
        up.wait()
    except KeyboardInterrupt:
        up.send_signal(signal.SIGINT)
        up.wait()
    finally:
        if up.poll() is None:
            up.terminate()
            up.wait()


def _env(data_dir: Path) -> dict[str, str]:
    # Snapshots every few seconds, so the demo's queries read Parquet almost at once.
    return {
        **os.environ,
        "BAYLINK_DATA_DIR": str(data_dir),
        "BAYLINK_STORAGE_SNAPSHOT_INTERVAL_SECONDS": "5",
    }


def _wait_until_ready(up: subprocess.Popen[bytes], data_dir: Path, api: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if up.poll() is not None:
            raise BaylinkCliError(f"baylink up exited with status {up.returncode}")
        if state_path(data_dir).exists():
            try:
                if httpx.get(f"{api}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    raise BaylinkCliError("the platform did not become ready within 120 s")


def _baylink(data_dir: Path, *args: str) -> None:
    typer.echo(f"$ baylink {' '.join(args)}")
    result = subprocess.run(
        [sys.executable, "-m", "baylink", *args], env=_env(data_dir), check=False
    )
    if result.returncode != 0:
        raise BaylinkCliError(f"`baylink {' '.join(args)}` failed (status {result.returncode})")


def _feed(data_dir: Path) -> None:
    bundled = files("baylink.demo")
    readings = _write_readings(data_dir / "sensor-readings.csv")
    with (
        as_file(bundled / "sensor-readings.yaml") as readings_yaml,
        as_file(bundled / "vehicle-positions.yaml") as vehicles_yaml,
        as_file(bundled / "vehicle-positions.pb") as feed,
    ):
        _baylink(data_dir, "dataset", "register", str(readings_yaml))
        _baylink(data_dir, "dataset", "register", str(vehicles_yaml))
        _baylink(data_dir, "ingest", str(readings), "--dataset", READINGS, "--wait")
        _baylink(
            data_dir, "ingest", str(feed), "--dataset", VEHICLES, "--format", "gtfs-rt", "--wait"
        )
    shipped = files("connectors.datasets")
    for definition, payload, dataset, fmt in SHIPPED:
        with as_file(shipped / definition) as yaml_file, as_file(bundled / payload) as data:
            _baylink(data_dir, "dataset", "register", str(yaml_file))
            _baylink(data_dir, "ingest", str(data), "--dataset", dataset, "--format", fmt, "--wait")
    _baylink(data_dir, "dataset", "list")


def _write_readings(path: Path, count: int = 3_000) -> Path:
    """Constructed readings from nine sensors in three regions, one a minute for the last day."""
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=1)
    sites = {"gd-shenzhen": (22.54, 114.06), "hk": (22.30, 114.17), "mo": (22.19, 113.54)}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["sensor_id", "observed_at", "lat", "lon", "speed", "volume", "lane_closed", "region"]
        )
        for i in range(count):
            region = DEMO_REGIONS[i % 3]
            lat, lon = sites[region]
            sensor = i % 9
            writer.writerow(
                [
                    f"{region}-s{sensor}",
                    (start + timedelta(minutes=i // 9)).isoformat(),
                    round(lat + sensor / 1000, 5),
                    round(lon + sensor / 1000, 5),
                    round(30 + (i * 7919) % 60 + 0.5, 1),
                    (i * 104_729) % 40,
                    "true" if i % 97 == 0 else "false",
                    region,
                ]
            )
    return path


def _print_guide(api: str, token_file: Path) -> None:
    records = f"{api}/v1/datasets/{READINGS}/records"
    auth, where = _auth_option(token_file)
    typer.echo(
        f"""
baylink demo is running. Open:
  API docs     {api}/docs
  catalog      curl {auth} '{api}/v1/datasets'

Every /v1 request needs a credential; the admin token is in {where}.
Three queries to try:
  curl {auth} '{records}?region=hk&limit=5'
  curl {auth} '{records}?bbox=113.5,22.1,113.6,22.3&fields=sensor_id,speed&format=csv'
  curl {auth} '{api}/v1/datasets/{VEHICLES}/records?limit=3'

More sample data: the Transport Department's speed map ({SPEED_MAP}), detector
locations given in the Hong Kong 1980 Grid and served in WGS-84 ({DETECTORS}), and ECB
exchange rates read from SDMX-ML ({EXCHANGE_RATES}):
  curl {auth} '{api}/v1/datasets/{DETECTORS}/records?bbox=114.15,22.24,114.16,22.26'

Snapshots are written every few seconds: {api}/v1/datasets/{READINGS}/snapshots
Press Ctrl-C to stop."""
    )


def _auth_option(token_file: Path) -> tuple[str, str]:
    """curl's option sending the admin token, and where the token is."""
    if configured_admin_token() is not None:
        variable = "BAYLINK_ADMIN_TOKEN"
        return f'-H "Authorization: Bearer ${variable}"', f"the {variable} environment variable"
    return f'-H "Authorization: Bearer $(cat {token_file})"', str(token_file)
