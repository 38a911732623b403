"""A grant that coarsens the location to H3 cells, over HTTP: in every format and every path
that returns records (pages, snapshot exports, aggregates, provenance, box filters) the partner
receives each record's cell and the cell's centre, never a coordinate finer than the cell."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h3
import httpx
import pyarrow.parquet as pq
import pytest
from pyarrow import ipc

from domain.transformation import Transformation, TransformationKind
from storage.governance import Governance
from storage.h3_cells import cell_centre, centre_decimals
from tests.integration.api.conftest import ServedGoverned, bearer, serving_governed
from tests.integration.api.governed import (
    DATASETS,
    HK,
    PURPOSE,
    ROWS,
    allow_hk_to_mo,
    share_with_new_partner,
)
from tests.integration.api.readings import Reading
from tests.support.credentials import ADMIN

pytestmark = pytest.mark.integration

RESOLUTION = 7  # edges of about 1.2 km: the readings fall into a few dozen cells
RECORDS = f"/v1/datasets/{HK}/records"
COARSEN = Transformation(TransformationKind.COARSEN_LOCATION, None, {"h3_resolution": RESOLUTION})


@dataclass
class CellGrant:
    served: ServedGoverned
    partner: str
    key: str

    @property
    def raw(self) -> dict[str, Reading]:
        return {r["record_id"]: r for r in self.served.store.records[HK]}


@pytest.fixture(scope="module")
def cells(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CellGrant]:
    directory: Path = tmp_path_factory.mktemp("h3")
    with serving_governed(directory, rate_limit_per_second=1e6, rate_limit_burst=10**6) as served:
        governance = Governance(served.event_store_url)
        try:
            allow_hk_to_mo(governance, DATASETS[HK])
            partner, key = share_with_new_partner(governance, "Cells", DATASETS[HK], COARSEN)
        finally:
            governance.close()
        yield CellGrant(served, partner, key)


@pytest.fixture
async def api(cells: CellGrant) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=cells.served.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://baylink", headers=bearer(cells.key)
    ) as client:
        yield client


def _rows(response: httpx.Response, fmt: str) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    if fmt == "json":
        return list(response.json()["records"])
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(response.text)))
    if fmt == "arrow":
        return list(ipc.open_stream(response.content).read_all().to_pylist())
    return list(pq.read_table(io.BytesIO(response.content)).to_pylist())


def _next(response: httpx.Response, fmt: str) -> str | None:
    if fmt == "json":
        cursor: str | None = response.json()["next_cursor"]
        return cursor
    header = response.headers.get("Baylink-Next-Cursor")
    return None if header is None else str(header)


async def _all(
    api: httpx.AsyncClient, fmt: str = "json", path: str = RECORDS, **params: Any
) -> list[dict[str, Any]]:
    """Every record a request reaches, following its cursors."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        extra = {"cursor": cursor} if cursor else {}
        response = await api.get(path, params={"format": fmt, **params, **extra})
        found += _rows(response, fmt)
        cursor = _next(response, fmt)
        if cursor is None:
            return found


def _decimals(text: str) -> int:
    return len(text.partition(".")[2].rstrip("0"))


def assert_only_cells(rows: list[dict[str, Any]], raw: dict[str, Reading]) -> None:
    """Each row's location is its stored record's cell and that cell's centre, to no more
    decimals than the resolution's."""
    assert rows
    digits = centre_decimals(RESOLUTION)
    for row in rows:
        stored = raw[str(row["record_id"])]
        cell = str(row["h3_cell"])
        assert cell == h3.latlng_to_cell(stored["lat"], stored["lon"], RESOLUTION)
        assert h3.get_resolution(cell) == RESOLUTION
        assert (float(row["lat"]), float(row["lon"])) == cell_centre(cell)
        assert _decimals(str(row["lat"])) <= digits
        assert _decimals(str(row["lon"])) <= digits


@pytest.mark.parametrize("fmt", ["json", "csv", "arrow", "parquet"])
async def test_every_format_sends_the_cell_and_its_centre_for_each_record(
    api: httpx.AsyncClient, cells: CellGrant, fmt: str
) -> None:
    rows = await _all(api, fmt, limit=500)

    assert sorted(str(r["record_id"]) for r in rows) == sorted(cells.raw)
    assert_only_cells(rows, cells.raw)
    assert len({r["h3_cell"] for r in rows}) > 1
    # Every stored point differs from its cell's centre: nothing exact got through.
    assert all(
        (float(r["lat"]), float(r["lon"])) != (cells.raw[str(r["record_id"])]["lat"],
                                               cells.raw[str(r["record_id"])]["lon"])
        for r in rows
    )  # fmt: skip


async def test_the_csv_text_holds_no_coordinate_finer_than_the_cell(
    api: httpx.AsyncClient,
) -> None:
    response = await api.get(RECORDS, params={"format": "csv", "limit": 1000})

    table = list(csv.reader(io.StringIO(response.text)))
    lat, lon = table[0].index("lat"), table[0].index("lon")
    digits = centre_decimals(RESOLUTION)
    assert all(_decimals(row[lat]) <= digits and _decimals(row[lon]) <= digits
               for row in table[1:])  # fmt: skip


async def test_chosen_fields_are_coarsened_alike(api: httpx.AsyncClient, cells: CellGrant) -> None:
    lat_only = await _all(api, fields="lat", limit=1000)
    cell_only = await _all(api, fields="h3_cell,speed", limit=1000)

    assert all(set(r) == {"record_id", "lat"} for r in lat_only)
    assert all(set(r) == {"record_id", "h3_cell", "speed"} for r in cell_only)
    by_id = {r["record_id"]: r for r in cell_only}
    assert all(r["lat"] == cell_centre(by_id[r["record_id"]]["h3_cell"])[0] for r in lat_only)


async def test_a_box_is_matched_against_the_cell_centre_not_the_stored_point(
    api: httpx.AsyncClient, cells: CellGrant
) -> None:
    everything = await _all(api, limit=1000)
    cell = everything[0]["h3_cell"]
    lat, lon = cell_centre(cell)
    around_centre = f"{lon - 1e-6},{lat - 1e-6},{lon + 1e-6},{lat + 1e-6}"
    # A box around one stored point, small enough to miss every cell centre: a partner
    # narrowing a box onto a point learns nothing from it.
    stored = cells.raw[everything[0]["record_id"]]
    around_point = f"{stored['lon'] - 1e-6},{stored['lat'] - 1e-6},"
    around_point += f"{stored['lon'] + 1e-6},{stored['lat'] + 1e-6}"

    in_cell = await _all(api, bbox=around_centre, limit=7)  # small pages, to page through
    at_point = await _all(api, bbox=around_point, limit=7)

    assert in_cell == [r for r in everything if r["h3_cell"] == cell]
    assert len(in_cell) > 7
    assert at_point == []


async def test_aggregates_neither_group_nor_filter_nor_measure_by_location(
    api: httpx.AsyncClient,
) -> None:
    path = f"/v1/datasets/{HK}/aggregate"
    refused = [
        await api.get(path, params=params)
        for params in (
            {"group_by": "lat"},
            {"group_by": "h3_cell"},
            {"metric": "max:lat"},
            {"bbox": "113.9,22.2,114,22.3"},
        )
    ]
    allowed = await api.get(path, params={"group_by": "region", "metric": ["count", "mean:speed"]})

    assert [r.status_code for r in refused] == [400] * 4
    assert allowed.status_code == 200, allowed.text
    assert sum(g["count"] for g in allowed.json()["groups"]) == ROWS


async def test_snapshot_files_point_to_their_records_and_those_are_coarsened(
    api: httpx.AsyncClient, cells: CellGrant
) -> None:
    href = (await api.get(f"/v1/datasets/{HK}/snapshots")).json()["snapshots"][0]["href"]
    manifest = (await api.get(href)).json()

    assert manifest["manifest_url"] is None
    assert manifest["files"]
    for file in manifest["files"]:
        assert file["url"] is None
        exported = _rows(await api.get(file["export"]), "parquet")
        # The region's records of the file's day: the file's, and any since in the tail.
        assert len(exported) >= file["rows"]
        assert {r["region"] for r in exported} == {file["region"]}
        assert_only_cells(exported, cells.raw)


async def test_provenance_carries_no_coordinate(api: httpx.AsyncClient, cells: CellGrant) -> None:
    record = next(iter(cells.raw.values()))

    response = await api.get(f"/v1/records/{record['record_id']}/provenance")

    assert response.status_code == 200, response.text
    assert repr(record["lat"]) not in response.text
    assert repr(record["lon"]) not in response.text


async def test_the_catalog_says_the_location_comes_as_cells_and_why(
    api: httpx.AsyncClient, cells: CellGrant
) -> None:
    detail = (await api.get(f"/v1/datasets/{HK}")).json()
    listed = (await api.get("/v1/datasets")).json()["datasets"]

    fields = {f["name"]: f for f in detail["fields"]}
    assert str(RESOLUTION) in fields["h3_cell"]["description"]
    assert {"lat", "lon", "h3_cell"} <= set(fields)
    assert "h3_cell" in {c["name"] for c in detail["columns"]}
    assert (
        detail["grant"]
        == {
            "reason": "agreement",
            "agreement_id": f"hk-{cells.partner}",
            "purpose": PURPOSE,
            "classification": "internal",  # volume is internal, the rest public
            "fields": [*DATASETS[HK].field_names[:-1], "h3_cell"],  # operator_id is sensitive
            "transformations": [{"kind": "coarsen_location", "h3_resolution": RESOLUTION}],
            "row_scope": {"regions": None, "bbox": None, "start": None, "end": None},
        }
    )
    assert [d["grant"] for d in listed if d["id"] == HK] == [detail["grant"]]


async def test_the_administrator_still_reads_the_stored_points(
    api: httpx.AsyncClient, cells: CellGrant
) -> None:
    page = await api.get(RECORDS, params={"limit": 5}, headers=ADMIN)

    for row in page.json()["records"]:
        stored = cells.raw[row["record_id"]]
        assert (row["lat"], row["lon"]) == (stored["lat"], stored["lon"])
        assert "h3_cell" not in row
