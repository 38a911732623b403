"""Aggregates agree with a plain computation over the source rows, under every filter."""

from __future__ import annotations

from collections import defaultdict
from statistics import fmean
from typing import Any

import httpx
import pytest

from tests.integration.api.readings import StoredReadings
from tests.integration.api.test_records_query import DATASET, FILTERS, query_params

pytestmark = pytest.mark.integration

AGGREGATE = f"/v1/datasets/{DATASET}/aggregate"


@pytest.mark.parametrize("filters", FILTERS.values(), ids=FILTERS.keys())
async def test_count_and_mean_speed_per_region_match_the_source_rows(
    api: httpx.AsyncClient, stored: StoredReadings, filters: dict[str, Any]
) -> None:
    expected: dict[str, list[float]] = defaultdict(list)
    for record in stored.expected(**filters):
        expected[str(record["region"])].append(float(record["speed"]))

    response = await api.get(
        AGGREGATE, params=query_params(filters, metric=["count", "mean:speed", "max:volume"])
    )

    assert response.status_code == 200, response.text
    groups = response.json()["groups"]
    assert [g["region"] for g in groups] == sorted(expected)
    for group in groups:
        speeds = expected[group["region"]]
        assert group["count"] == len(speeds)
        assert group["mean_speed"] == pytest.approx(fmean(speeds))


async def test_an_aggregate_without_groups_counts_every_record(
    api: httpx.AsyncClient, stored: StoredReadings
) -> None:
    response = await api.get(AGGREGATE, params={"group_by": "", "metric": "count"})

    assert response.status_code == 200, response.text
    assert response.json()["groups"] == [{"count": len(stored.records)}]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"metric": "median:speed"}, "metrics"),
        ({"metric": "mean:sensor_id"}, "metrics"),
        ({"group_by": "speed"}, "group_by"),
        ({"group_by": "colour"}, "group_by"),
    ],
)
async def test_a_bad_aggregate_is_a_problem_naming_the_parameter(
    api: httpx.AsyncClient, params: dict[str, str], parameter: str
) -> None:
    response = await api.get(AGGREGATE, params=params)

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["parameter"] == parameter
