"""Querying a dataset's records: every filter agrees with a plain computation over the source
rows, pages return each record once, and records not yet snapshotted are included."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.integration.api.readings import Reading, StoredReadings, from_json

pytestmark = pytest.mark.integration

DATASET = "gba.traffic.sensor-readings"
RECORDS = f"/v1/datasets/{DATASET}/records"
START = datetime(2026, 11, 21, 23, 50, tzinfo=UTC)
END = datetime(2026, 11, 23, 0, 10, tzinfo=UTC)
BBOX = (113.91, 22.23, 113.93, 22.26)

FILTERS: dict[str, dict[str, Any]] = {
    "no filter": {},
    "from a start time": {"start": START},
    "before an end time": {"end": END},
    "within a time range": {"start": START, "end": END},
    "in one region": {"region": "hk"},
    "in an area": {"bbox": BBOX},
    "in a region and a time range": {"region": "mo", "start": START, "end": END},
    "in an area and a region": {"bbox": BBOX, "region": "gd-shenzhen"},
    "in an area, a region and a time range": {
        "bbox": BBOX,
        "region": "hk",
        "start": START,
        "end": END,
    },
    "in a range no reading falls in": {
        "start": datetime(2027, 1, 1, tzinfo=UTC),
        "end": datetime(2027, 1, 2, tzinfo=UTC),
    },
}


def query_params(filters: dict[str, Any], **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, value in filters.items():
        if isinstance(value, datetime):
            params[name] = value.isoformat()
        elif name == "bbox":
            params[name] = ",".join(map(str, value))
        else:
            params[name] = value
    return {**params, **extra}


async def all_pages(
    api: httpx.AsyncClient, stored: StoredReadings, params: dict[str, Any]
) -> tuple[list[Reading], int]:
    """Every record the paged query returns, following next_cursor to the end."""
    records: list[Reading] = []
    pages = 0
    cursor: str | None = None
    while True:
        page_params = params if cursor is None else {**params, "cursor": cursor}
        response = await api.get(RECORDS, params=page_params)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        assert body["count"] == len(body["records"])
        records += from_json(stored.dataset, body["records"])
        cursor = body["next_cursor"]
        if cursor is None:
            return records, pages


@pytest.mark.parametrize("filters", FILTERS.values(), ids=FILTERS.keys())
async def test_each_filter_returns_exactly_the_matching_readings(
    api: httpx.AsyncClient, stored: StoredReadings, filters: dict[str, Any]
) -> None:
    response = await api.get(RECORDS, params=query_params(filters, limit=10_000))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    assert from_json(stored.dataset, body["records"]) == stored.expected(**filters)


async def test_the_whole_dataset_includes_the_readings_not_yet_snapshotted(
    api: httpx.AsyncClient, stored: StoredReadings
) -> None:
    response = await api.get(RECORDS, params={"limit": 10_000, "fields": "region"})

    ids = {record["record_id"] for record in response.json()["records"]}
    assert len(stored.tail_ids) == 2_000
    assert stored.tail_ids <= ids
    assert len(ids) == 10_000


async def test_the_answer_names_the_log_position_it_is_complete_up_to(
    api: httpx.AsyncClient,
) -> None:
    detail = (await api.get(f"/v1/datasets/{DATASET}")).json()
    page = (await api.get(RECORDS, params={"limit": 1})).json()

    # One event came between the answers: the access record of the first request.
    assert page["current_to_position"] == detail["freshness"]["store_position"] + 1
    assert page["current_to_position"] > detail["freshness"]["snapshot_position"]


@pytest.mark.parametrize(
    ("filters", "limit"),
    [({}, 997), ({"region": "mo", "start": START}, 333), ({"bbox": BBOX}, 100)],
    ids=["whole dataset", "region from a start time", "area"],
)
async def test_paging_with_the_cursor_returns_each_reading_once_in_order(
    api: httpx.AsyncClient, stored: StoredReadings, filters: dict[str, Any], limit: int
) -> None:
    records, pages = await all_pages(api, stored, query_params(filters, limit=limit))

    expected = stored.expected(**filters)
    assert records == expected
    assert len({r["record_id"] for r in records}) == len(records)
    assert pages == max(1, -(-len(expected) // limit))


async def test_a_page_holds_only_the_chosen_fields_and_the_record_id(
    api: httpx.AsyncClient, stored: StoredReadings
) -> None:
    response = await api.get(
        RECORDS, params={"fields": "speed,region,speed", "region": "hk", "limit": 5}
    )

    records = response.json()["records"]
    expected = stored.expected(region="hk")[:5]
    assert records == [
        {"record_id": r["record_id"], "speed": r["speed"], "region": r["region"]} for r in expected
    ]


async def test_a_limit_caps_the_page_and_offers_a_cursor(api: httpx.AsyncClient) -> None:
    body = (await api.get(RECORDS, params={"limit": 10})).json()

    assert body["count"] == 10
    assert isinstance(body["next_cursor"], str)
