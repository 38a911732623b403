"""Grants that summarise, drop or coarsen: the API sends what they allow and no filter or
aggregate can be used to see behind them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from domain.agreement import AgreementTerms
from domain.classification import Classification
from domain.transformation import Transformation, TransformationKind
from domain.whitelist import WhitelistRule
from storage.governance import Governance
from tests.integration.api.conftest import ServedGoverned, bearer
from tests.integration.api.governed import DATASETS, HK, PURPOSE, ROWS

pytestmark = pytest.mark.integration

RECORDS = f"/v1/datasets/{HK}/records"
MIN_COUNT = 200  # more than the closed-lane readings of an hour (one in seven)


def _grant(governance: Governance, name: str, *transformations: Transformation) -> str:
    """A Macao partner and an active agreement on the HK readings with these transformations;
    returns the partner's key."""
    now = datetime.now(UTC)
    partner = governance.register_partner("mo", name, Classification.INTERNAL).partner_id
    terms = AgreementTerms(
        agreement_id=f"hk-{partner}",
        provider_region="hk",
        consumer_partner=partner,
        datasets=frozenset({HK}),
        purpose=PURPOSE,
        valid_from=now - timedelta(days=1),
        transformations={HK: transformations},
    )
    governance.propose(terms, "hk", DATASETS.__getitem__)
    governance.approve(terms.agreement_id, "hk")
    governance.accept(terms.agreement_id, partner)
    governance.activate(terms.agreement_id, "admin", DATASETS.__getitem__, now)
    return governance.issue_key(partner, now - timedelta(seconds=1)).key


@pytest.fixture
async def keys(fresh_governed: ServedGoverned) -> AsyncIterator[dict[str, str]]:
    governance = Governance(fresh_governed.event_store_url)
    try:
        governance.add_rule(
            WhitelistRule(
                "hk-mo-traffic", "HK", "MO", Classification.INTERNAL, frozenset({PURPOSE}),
                "GBA-SC-2026-0004", datetime.now(UTC) - timedelta(days=30),
                dataset_kind=DATASETS[HK].kind,
            )
        )  # fmt: skip
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
            "h3": _grant(
                governance,
                "Cells",
                Transformation(TransformationKind.COARSEN_LOCATION, None, {"h3_resolution": 7}),
            ),
        }
    finally:
        governance.close()


@pytest.fixture
async def api(fresh_governed: ServedGoverned) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=fresh_governed.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://baylink") as client:
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


async def test_a_dropped_field_is_unknown_and_a_coarse_location_has_no_box_filter(
    api: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    page = await _get(api, keys["grid"], limit=50)
    dropped = await _get(api, keys["grid"], fields="volume")
    unknown = await _get(api, keys["grid"], fields="nosuch")
    boxed = await _get(api, keys["grid"], bbox="113.9,22.2,113.91,22.21")
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
    assert boxed.status_code == 400
    assert grouped.status_code == 400
    assert "volume" not in {f["name"] for f in detail.json()["fields"]}


async def test_a_grant_to_h3_cells_withholds_the_location_rather_than_send_it_finer(
    api: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    page = await _get(api, keys["h3"], limit=20)

    assert page.status_code == 200, page.text
    assert page.json()["records"]
    assert all("lat" not in r and "lon" not in r for r in page.json()["records"])
