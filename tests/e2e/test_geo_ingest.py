"""`baylink ingest` of GeoJSON, GeoParquet and a zipped shapefile into a running platform, and
the records API serving what was stored, in WGS-84, with bbox matching intersecting shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import shapely
from shapely.geometry import shape

from baylink.runtime.ports import free_port
from connectors.crs import metres_between
from connectors.shapefile import shapefile_bundle
from tests.support.embedded import admin_headers, baylink, running_platform

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "geo"
DISTRICTS = ROOT / "connectors" / "datasets" / "hk-district-boundaries.yaml"
DETECTORS = ROOT / "connectors" / "datasets" / "hk-traffic-detectors.yaml"


def _ingest(data_dir: Path, path: Path, dataset: str, *options: str) -> dict[str, Any]:
    result = baylink(
        data_dir, "ingest", str(path), "--dataset", dataset, "--wait", "--json", *options
    )
    outcome: dict[str, Any] = json.loads(result.stdout)
    return outcome


def test_geo_files_are_ingested_and_served_in_wgs84(tmp_path: Path) -> None:
    district = json.loads((FIXTURES / "hk-central-western.geojson").read_text(encoding="utf-8"))
    district["features"][0]["properties"]["valid_from"] = "2026-01-01T00:00:00+08:00"
    district["features"][0]["properties"]["DC_CHIN_HANS"] = "中西区"
    districts_file = tmp_path / "districts.geojson"
    districts_file.write_text(json.dumps(district, ensure_ascii=False), encoding="utf-8")
    detectors_file = tmp_path / "detectors.json"  # the name says nothing: --format does
    detectors_file.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2326"}},
                "features": [
                    {
                        "type": "Feature",
                        "id": "AID01101",
                        "geometry": {"type": "Point", "coordinates": [833758, 812147]},
                        "properties": {
                            "valid_from": "2026-01-01T00:00:00Z",
                            "road_en": "Aberdeen Tunnel",
                            "road_tc": "香港仔隧道",
                        },
                    }
                ],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    countries = tmp_path / "countries.shp.zip"
    countries.write_bytes(
        shapefile_bundle(FIXTURES / "naturalearth_lowres" / "naturalearth_lowres.shp")
    )
    data_dir, port = tmp_path / "baylink", free_port()
    with running_platform(data_dir, port):
        baylink(data_dir, "dataset", "register", str(DISTRICTS))
        baylink(data_dir, "dataset", "register", str(DETECTORS))
        # The file is WGS-84 but carries no crs member; the dataset says HK 1980 Grid.
        unguessed = _ingest(data_dir, districts_file, "hk.geo.district-boundaries")
        declared = _ingest(
            data_dir, districts_file, "hk.geo.district-boundaries", "--crs", "EPSG:4326"
        )
        points = _ingest(
            data_dir, detectors_file, "hk.geo.traffic-detectors", "--format", "geojson"
        )
        # Natural Earth's countries hold no detector fields: each is rejected, with reasons.
        shapes = _ingest(data_dir, countries, "hk.geo.traffic-detectors")
        api = f"http://127.0.0.1:{port}/v1/datasets"
        admin = admin_headers(data_dir)
        stored = httpx.get(
            f"{api}/hk.geo.district-boundaries/records", headers=admin, timeout=30
        ).json()
        inside = httpx.get(
            f"{api}/hk.geo.district-boundaries/records",
            params={"bbox": "114.150,22.270,114.152,22.272"},
            headers=admin,
            timeout=30,
        ).json()
        outside = httpx.get(
            f"{api}/hk.geo.district-boundaries/records",
            params={"bbox": "114.112,22.253,114.118,22.258"},
            headers=admin,
            timeout=30,
        ).json()
        detector = httpx.get(
            f"{api}/hk.geo.traffic-detectors/records", headers=admin, timeout=30
        ).json()

    assert (unguessed["accepted"], unguessed["rejected"]) == (0, 1)
    assert "invalid-record" in unguessed["reasons"]
    assert (declared["accepted"], declared["rejected"]) == (1, 0)
    assert (points["accepted"], points["rejected"]) == (1, 0)
    assert shapes["accepted"] == 0
    assert shapes["rejected"] == 177
    (record,) = stored["records"]
    assert (record["dc_chin"], record["dc_chin_hans"]) == ("中西區", "中西区")
    assert record["geometry_repair"].startswith("make_valid: Self-intersection")
    boundary = shape(record["boundary"])
    assert boundary.is_valid
    assert boundary.intersects(shapely.box(114.150, 22.270, 114.152, 22.272))
    assert [r["record_id"] for r in inside["records"]] == [record["record_id"]]
    assert outside["records"] == []
    (point,) = detector["records"]
    lon, lat = point["location"]["coordinates"]
    assert metres_between(lon, lat, 114.152525, 22.248091) < 1.0
    assert point["detector_id"] == "AID01101"
    assert point["road_tc"] == "香港仔隧道"
    assert point["h3_cell"] is not None
