"""Geometry fields through the whole platform: GeoJSON in, the ingest processor, snapshots as
GeoParquet, the tail, and the records API answering GeoJSON, WKT, GeoArrow and GeoParquet with
a bbox filter that matches geometries intersecting the box; and a partner whose agreement
shares the places only as H3 cells receiving each as its cell's centre."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h3
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely
from fastapi import FastAPI
from pyarrow import ipc
from pydantic import SecretStr
from shapely.geometry import box, shape

from api.app import create_app
from api.services import QueryServiceProvider
from api.settings import ApiSettings
from connectors.geojson import parse_feature_collection
from domain.dataset import DatasetDefinition
from domain.provenance import Provenance
from domain.snapshot import Manifest
from domain.transformation import Transformation, TransformationKind
from storage.catalog import Catalog
from storage.governance import Governance
from storage.h3_cells import cell_centre
from storage.ingestion import IngestLedger
from storage.object_store_factory import open_object_store
from storage.object_store_local import LocalObjectStore
from storage.snapshots import SnapshotBuilder, SnapshotLedger
from streams import wire
from streams.processor import IngestProcessor
from tests.integration.api.conftest import bearer
from tests.integration.api.governed import allow_hk_to_mo, share_with_new_partner
from tests.support.credentials import ADMIN, ADMIN_TOKEN
from tests.support.services import fresh_postgres_url

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
FIXTURE = Path(__file__).parents[2] / "fixtures" / "geo" / "hk-central-western.geojson"
PLACES = DatasetDefinition.from_dict(
    {
        "id": "hk.geo.places",
        "kind": "geospatial",
        "owner_region": "hk",
        "title": {"en": "Places", "zh-Hant": "地點", "zh-Hans": "地点"},
        "time_field": "valid_from",
        "key_fields": ["place_id"],
        "geometry": {
            "field": "shape",
            "crs": "EPSG:4326",
            "h3_field": "h3_cell",
            "repair_field": "repair",
            "id_field": "place_id",
        },
        "fields": [
            {"name": "place_id", "type": "string"},
            {"name": "valid_from", "type": "timestamp"},
            {"name": "name_zh", "type": "string"},
            {"name": "shape", "type": "geometry"},
            {"name": "h3_cell", "type": "string"},
            {"name": "repair", "type": "string"},
        ],
    }
)
RECORDS = f"/v1/datasets/{PLACES.id}/records"
# Inside the district's bounding box but outside its polygon (the harbour north of Sheung Wan
# is outside, as are the hills south of it): tells "intersects" from "bounding boxes overlap".
OUTSIDE_POLYGON_INSIDE_ITS_BOX = (114.112, 22.253, 114.118, 22.258)
# Wholly inside the district: no vertex of it lies in this box, yet the polygon intersects it.
INSIDE_POLYGON = (114.150, 22.270, 114.152, 22.272)


def _features() -> list[dict[str, Any]]:
    district = json.loads(FIXTURE.read_text(encoding="utf-8"))["features"][0]
    features = [
        {
            "type": "Feature",
            "id": "district-A",
            "geometry": district["geometry"],
            "properties": {"valid_from": "2026-01-01T00:00:00+08:00", "name_zh": "中西區"},
        }
    ]
    for i in range(30):
        lon, lat = 114.10 + i * 0.003, 22.25 + (i % 7) * 0.006
        features.append(
            {
                "type": "Feature",
                "id": f"p{i:02d}",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {"valid_from": f"2026-01-{1 + i % 5:02d}T08:00:00Z"},
            }
        )
        features.append(
            {
                "type": "Feature",
                "id": f"l{i:02d}",
                "geometry": {
                    "type": "LineString",
                    "coordinates": [[lon, lat], [lon + 0.01, lat - 0.01]],
                },
                "properties": {"valid_from": f"2026-01-{1 + i % 5:02d}T09:00:00Z"},
            }
        )
    return features


@dataclass
class ServedPlaces:
    app: FastAPI
    sources: dict[str, Any]  # place_id -> shapely geometry as stored
    store_root: Path
    event_store_url: str
    manifests: list[Manifest]


def _store(event_store_url: str, object_store_url: str) -> tuple[dict[str, Any], list[Manifest]]:
    features = _features()
    catalog, ledger = Catalog(event_store_url), IngestLedger(event_store_url)
    snapshot_ledger = SnapshotLedger(event_store_url)
    sources: dict[str, Any] = {}
    manifests: list[Manifest] = []
    try:
        catalog.register(PLACES)
        processor = IngestProcessor(ledger, catalog, clock=lambda: NOW)
        builder = SnapshotBuilder(snapshot_ledger, catalog, open_object_store(object_store_url))
        # Two messages snapshotted, the third left in the log's tail.
        for message, chunk in enumerate([features[:21], features[21:41], features[41:]]):
            data = json.dumps({"type": "FeatureCollection", "features": chunk}).encode()
            parsed = parse_feature_collection(data, PLACES)
            provenance = Provenance(
                f"file:///places-{message}.geojson",
                NOW,
                f"{message:02d}" * 32,
                "geojson",
                "1",
                "hk",
                wire.WIRE_SCHEMA_VERSION,
            )
            headers = wire.headers_for(wire.KIND_RECORDS, PLACES.id, provenance, None)
            outcome = processor.process(
                PLACES.ingest_topic, 0, message, wire.encode_rows(parsed.rows), headers
            )
            assert (outcome.accepted, outcome.rejected) == (len(chunk), 0)
            for row in parsed.rows:
                sources[str(row["place_id"])] = shape(row["shape"])  # type: ignore[arg-type]
            if message < 2:
                manifests += builder.run_once()
    finally:
        for application in (snapshot_ledger, ledger, catalog):
            application.close()
    return sources, manifests


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedPlaces]:
    root = tmp_path_factory.mktemp("objects") / "store"
    object_store_url = root.as_uri()

    def serve(event_store_url: str) -> Iterator[ServedPlaces]:
        sources, manifests = _store(event_store_url, object_store_url)
        app = create_app(
            ApiSettings(
                event_store_url=event_store_url,
                object_store_url=object_store_url,
                admin_token=SecretStr(ADMIN_TOKEN),
            )
        )
        provider = app.state.query_service
        assert isinstance(provider, QueryServiceProvider)
        try:
            yield ServedPlaces(app, sources, root, event_store_url, manifests)
        finally:
            provider.close()

    if request.param == "sqlite":
        yield from serve(f"sqlite:///{tmp_path_factory.mktemp('events') / 'events.sqlite'}")
    else:
        with fresh_postgres_url() as url:
            yield from serve(url)


@pytest.fixture
async def api(served: ServedPlaces) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=served.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://baylink", headers=ADMIN
    ) as client:
        yield client


async def _records(
    api: httpx.AsyncClient, headers: dict[str, str] | None = None, **params: Any
) -> list[dict[str, Any]]:
    response = await api.get(RECORDS, params={"limit": 1000, **params}, headers=headers)
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()["records"]
    return records


async def test_json_answers_carry_geojson_geometries_as_stored(
    api: httpx.AsyncClient, served: ServedPlaces
) -> None:
    records = await _records(api)
    assert len(records) == len(served.sources) == 61
    for record in records:
        geometry = shape(record["shape"])
        assert geometry.equals_exact(served.sources[record["place_id"]], tolerance=0)
    district = next(r for r in records if r["place_id"] == "district-A")
    assert district["name_zh"] == "中西區"
    assert district["repair"].startswith("make_valid: Self-intersection")
    assert district["h3_cell"] is None
    point = next(r for r in records if r["place_id"] == "p00")
    assert point["h3_cell"] is not None


@pytest.mark.parametrize(
    "edges",
    [
        OUTSIDE_POLYGON_INSIDE_ITS_BOX,
        INSIDE_POLYGON,
        (114.0, 22.0, 114.5, 22.5),
        (114.13, 22.27, 114.16, 22.29),
        (0.0, 0.0, 1.0, 1.0),
    ],
)
async def test_bbox_matches_geometries_that_intersect_the_box(
    api: httpx.AsyncClient, served: ServedPlaces, edges: tuple[float, float, float, float]
) -> None:
    records = await _records(api, bbox=",".join(map(str, edges)))
    expected = sorted(k for k, g in served.sources.items() if g.intersects(box(*edges)))
    assert sorted(r["place_id"] for r in records) == expected
    district_in = "district-A" in expected
    assert district_in == (edges not in (OUTSIDE_POLYGON_INSIDE_ITS_BOX, (0, 0, 1, 1)))


async def test_aggregates_honour_the_bbox_on_geometries(
    api: httpx.AsyncClient, served: ServedPlaces
) -> None:
    edges = (114.13, 22.27, 114.16, 22.29)
    response = await api.get(
        f"/v1/datasets/{PLACES.id}/aggregate",
        params={"bbox": ",".join(map(str, edges)), "metric": "count"},
    )
    assert response.status_code == 200, response.text
    expected = sum(1 for g in served.sources.values() if g.intersects(box(*edges)))
    assert response.json()["groups"] == [{"region": "hk", "count": expected}]


async def test_csv_answers_write_geometries_as_wkt(
    api: httpx.AsyncClient, served: ServedPlaces
) -> None:
    response = await api.get(RECORDS, params={"format": "csv", "limit": 1000})
    table = pa.csv.read_csv(io.BytesIO(response.content))
    for place_id, text in zip(
        table["place_id"].to_pylist(), table["shape"].to_pylist(), strict=True
    ):
        assert shapely.from_wkt(text).equals_exact(served.sources[place_id], tolerance=0)


async def test_arrow_and_parquet_answers_are_geoarrow_and_geoparquet(
    api: httpx.AsyncClient, served: ServedPlaces
) -> None:
    arrow = await api.get(RECORDS, params={"format": "arrow", "limit": 1000})
    table = ipc.open_stream(arrow.content).read_all()
    field = table.schema.field("shape")
    assert field.metadata[b"ARROW:extension:name"] == b"geoarrow.wkb"
    parquet = await api.get(RECORDS, params={"format": "parquet", "limit": 1000})
    read = pq.read_table(io.BytesIO(parquet.content))
    geo = json.loads(read.schema.metadata[b"geo"])
    assert geo["primary_column"] == "shape"
    assert geo["columns"]["shape"]["geometry_types"] == ["LineString", "MultiPolygon", "Point"]
    for place_id, wkb in zip(read["place_id"].to_pylist(), read["shape"].to_pylist(), strict=True):
        assert shapely.from_wkb(wkb).equals_exact(served.sources[place_id], tolerance=0)


def test_snapshot_files_are_geoparquet_with_wkb(served: ServedPlaces) -> None:
    files = sorted(served.store_root.rglob("*.parquet"))
    assert files
    for path in files:
        table = pq.read_table(path)
        geo = json.loads(table.schema.metadata[b"geo"])
        assert geo["version"] == "1.1.0"
        assert geo["primary_column"] == "shape"
        column = geo["columns"]["shape"]
        assert column["encoding"] == "WKB"
        assert "crs" not in column  # OGC:CRS84 by the GeoParquet specification
        shapes = shapely.from_wkb(table["shape"].to_pylist())
        assert list(shapely.total_bounds(shapes)) == column["bbox"]
        for place_id, geometry in zip(table["place_id"].to_pylist(), shapes, strict=True):
            assert geometry.equals_exact(served.sources[place_id], tolerance=0)


def test_snapshots_with_geometries_rebuild_to_the_same_bytes(
    served: ServedPlaces, tmp_path: Path
) -> None:
    assert len(served.manifests) == 2
    url = served.event_store_url
    snapshot_ledger, catalog = SnapshotLedger(url), Catalog(url)
    try:
        builder = SnapshotBuilder(snapshot_ledger, catalog, LocalObjectStore(tmp_path / "again"))
        for published in served.manifests:
            rebuilt = builder.build(PLACES, published.first_position, published.last_position)
            assert published.files  # each file named with its SHA-256, compared below
            assert rebuilt == published
    finally:
        snapshot_ledger.close()
        catalog.close()


async def test_the_catalog_names_the_geometry_field_and_its_crs(api: httpx.AsyncClient) -> None:
    body = (await api.get(f"/v1/datasets/{PLACES.id}")).json()
    assert body["geometry"] == {"lat": None, "lon": None, "field": "shape", "crs": "EPSG:4326"}
    assert {"name": "shape", "type": "binary", "nullable": True} in body["columns"]


CELL_RESOLUTION = 7


@pytest.fixture(scope="module")
def cell_key(served: ServedPlaces) -> str:
    """A Macao partner whose agreement shares the places only as H3 cells."""
    governance = Governance(served.event_store_url)
    try:
        allow_hk_to_mo(governance, PLACES)
        coarsen = Transformation(
            TransformationKind.COARSEN_LOCATION, None, {"h3_resolution": CELL_RESOLUTION}
        )
        return share_with_new_partner(governance, "Cells", PLACES, coarsen)[1]
    finally:
        governance.close()


def _as_cells(served: ServedPlaces, place_id: str, geometry: Any, cell: str) -> None:
    """The geometry sent is the centre of the cell of a point on the stored geometry."""
    anchor = shapely.point_on_surface(served.sources[place_id])
    assert cell == h3.latlng_to_cell(anchor.y, anchor.x, CELL_RESOLUTION)
    lat, lon = cell_centre(cell)
    assert geometry.equals_exact(shapely.Point(lon, lat), tolerance=0)


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet"])
async def test_a_grant_to_h3_cells_sends_each_geometry_as_its_cell(
    api: httpx.AsyncClient, served: ServedPlaces, cell_key: str, fmt: str
) -> None:
    response = await api.get(
        RECORDS, params={"format": fmt, "limit": 1000}, headers=bearer(cell_key)
    )

    assert response.status_code == 200, response.text
    if fmt == "json":
        rows = [
            (r["place_id"], shape(r["shape"]), r["h3_cell"]) for r in response.json()["records"]
        ]
    else:
        table = (
            pa.csv.read_csv(io.BytesIO(response.content))
            if fmt == "csv"
            else pq.read_table(io.BytesIO(response.content))
        )
        read = shapely.from_wkt if fmt == "csv" else shapely.from_wkb
        rows = [
            (p, read(g), c)
            for p, g, c in zip(*(table[n].to_pylist() for n in ("place_id", "shape", "h3_cell")),
                               strict=True)
        ]  # fmt: skip
    assert sorted(p for p, _g, _c in rows) == sorted(served.sources)
    for place_id, geometry, cell in rows:
        _as_cells(served, place_id, geometry, cell)


async def test_a_box_over_h3_cells_matches_the_cell_centres(
    api: httpx.AsyncClient, served: ServedPlaces, cell_key: str
) -> None:
    everything = await _records(api, headers=bearer(cell_key))
    edges = (114.13, 22.27, 114.16, 22.29)

    boxed = await _records(api, bbox=",".join(map(str, edges)), headers=bearer(cell_key))

    expected = [r for r in everything if shape(r["shape"]).intersects(box(*edges))]
    assert expected
    assert boxed == expected
    # The stored geometries in the box are not the same set: the box saw only cells.
    stored = {k for k, g in served.sources.items() if g.intersects(box(*edges))}
    assert {r["place_id"] for r in boxed} != stored
