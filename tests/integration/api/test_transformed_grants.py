"""Grants that summarise, drop or coarsen: the API sends what they allow and no filter or
aggregate can be used to see behind them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from domain.transformation import Transformation, TransformationKind
from storage.governance import Governance
from tests.integration.api.conftest import ServedGoverned, bearer, client_of
from tests.integration.api.governed import (
    DATASETS,
    HK,
    ROWS,
    allow_hk_to_mo,
    share_with_new_partner,
)

pytestmark = pytest.mark.integration

RECORDS = f"/v1/datasets/{HK}/records"
MIN_COUNT = 200  # more than the closed-lane readings of an hour (one in seven)


def _grant(governance: Governance, name: str, *transformations: Transformation) -> str:
    return share_with_new_partner(governance, name, DATASETS[HK], *transformations)[1]


@pytest.fixture
async def keys(fresh_governed: ServedGoverned) -> AsyncIterator[dict[str, str]]:
    governance = Governance(fresh_governed.event_store_url)
    try:
        allow_hk_to_mo(governance, DATASETS[HK])
        yield {
            "summaries": _grant(
                governance,
                "Statistics",
                Transformation(
                    TransformationKind.AGGREGATE,
                    None,
                    {
                        "window": "hour",
                        "group_by": ["lane_closed"],
                        "measures": {"speed": "mean"},
                        "min_count": MIN_COUNT,
                    },
                ),
            ),
            "grid": _grant(
                governance,
                "Planning",
                Transformation(TransformationKind.DROP, "volume"),
                Transformation(TransformationKind.COARSEN_LOCATION, None, {"grid_degrees": 0.01}),
            ),
        }
    finally:
        governance.close()


@pytest.fixture
async def api(fresh_governed: ServedGoverned) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(fresh_governed.app) as client:
        yield client


async def _get(
    api: httpx.AsyncClient, key: str, path: str = RECORDS, **params: Any
) -> httpx.Response:
    return await api.get(path, params=params, headers=bearer(key))


async def test_a_summarising_grant_sends_only_groups_of_the_minimum_size(
    api: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    page = await _get(api, keys["summaries"])
    one_row = await _get(api, keys["summaries"], limit=1)
    filtered = [
        await _get(api, keys["summaries"], **{name: value})
        for name, value in [
            ("region", "hk"),
            ("start", "2026-11-20T08:00:01Z"),
            ("end", "2026-11-20T08:10:00Z"),
            ("bbox", "113.9,22.2,114,22.3"),
        ]
    ]
    aggregate = await _get(api, keys["summaries"], f"/v1/datasets/{HK}/aggregate")

    assert page.status_code == 200, page.text
    groups = page.json()["records"]
    assert groups
    assert all(set(g) == {"window_start", "lane_closed", "count", "mean_speed"} for g in groups)
    assert all(g["count"] >= MIN_COUNT for g in groups)
    assert sum(g["count"] for g in groups) < ROWS  # the small groups were left out
    # One summary of every row: no limit or filter makes another that differs by a few rows.
    assert one_row.json()["records"] == groups
    assert [r.status_code for r in filtered] == [400] * 4
    assert aggregate.status_code == 400


async def test_a_dropped_field_is_unknown_and_a_grid_location_filters_by_its_cells(
    api: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    page = await _get(api, keys["grid"], limit=50)
    dropped = await _get(api, keys["grid"], fields="volume")
    unknown = await _get(api, keys["grid"], fields="nosuch")
    grouped = await _get(api, keys["grid"], f"/v1/datasets/{HK}/aggregate", group_by="lat")
    detail = await _get(api, keys["grid"], f"/v1/datasets/{HK}")

    records = page.json()["records"]
    assert records
    assert all("volume" not in r for r in records)
    # Grid cells of 0.01 degrees, each value the centre of its cell.
    assert all(round((r["lat"] - 0.005) / 0.01, 6).is_integer() for r in records)
    assert {r["lat"] for r in records} <= {22.205, 22.215, 22.225, 22.235, 22.245,
                                            22.255, 22.265, 22.275, 22.285, 22.295}  # fmt: skip
    assert dropped.status_code == unknown.status_code == 400
    assert dropped.json()["detail"].replace("'volume'", "'nosuch'") == unknown.json()["detail"]
    assert grouped.status_code == 400
    assert "volume" not in {f["name"] for f in detail.json()["fields"]}


async def test_a_box_is_matched_against_the_grid_cells_not_the_stored_points(
    api: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    everything = await _all(api, keys["grid"])
    one_cell = await _all(api, keys["grid"], bbox="113.9,22.2,113.91,22.21")
    # Stored points lie in this box (22.201 to 22.204 north, 113.901 to 113.904 east), but
    # no cell centre does: a box narrowed onto points finds nothing.
    between_centres = await _all(api, keys["grid"], bbox="113.901,22.201,113.904,22.204")
    aggregate = await _get(
        api, keys["grid"], f"/v1/datasets/{HK}/aggregate", bbox="113.9,22.2,113.91,22.21"
    )

    assert len(everything) == ROWS
    expected = [r for r in everything if (r["lat"], r["lon"]) == (22.205, 113.905)]
    assert expected
    assert one_cell == expected
    assert between_centres == []
    assert aggregate.status_code == 400


async def _all(api: httpx.AsyncClient, key: str, **params: Any) -> list[dict[str, Any]]:
    """Every record a request reaches, page after page (small pages, to page through)."""
    records: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        response = await _get(
            api, key, limit=500, **params, **({"cursor": cursor} if cursor else {})
        )
        assert response.status_code == 200, response.text
        records += response.json()["records"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return records
