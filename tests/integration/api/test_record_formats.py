"""A page of records reads the same as JSON, CSV, an Arrow stream or a Parquet file, chosen by
the format parameter or the Accept header."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from storage.parquet_snapshot import record_schema
from tests.integration.api.readings import StoredReadings, from_json

pytestmark = pytest.mark.integration

DATASET = "gba.traffic.sensor-readings"
RECORDS = f"/v1/datasets/{DATASET}/records"
START = datetime(2026, 11, 22, 23, 55, tzinfo=UTC)
PARAMS: dict[str, str | int] = {"region": "gd-shenzhen", "start": START.isoformat(), "limit": 700}
MEDIA = {
    "csv": "text/csv",
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
}


def rows_of(stored: StoredReadings, fmt: str, content: bytes) -> list[dict[str, Any]]:
    schema = record_schema(stored.dataset)
    if fmt == "csv":
        options = pacsv.ConvertOptions(
            column_types={f.name: f.type for f in schema}, strings_can_be_null=True
        )
        table = pacsv.read_csv(io.BytesIO(content), convert_options=options)
    elif fmt == "arrow":
        table = pa.ipc.open_stream(content).read_all()
    else:
        table = pq.read_table(io.BytesIO(content))
    assert table.schema.names == schema.names
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


@pytest.mark.parametrize("fmt", MEDIA)
@pytest.mark.parametrize("chosen_by", ["format parameter", "Accept header"])
async def test_a_page_reads_the_same_in_every_format(
    api: httpx.AsyncClient, stored: StoredReadings, fmt: str, chosen_by: str
) -> None:
    page = (await api.get(RECORDS, params=PARAMS)).json()
    if chosen_by == "format parameter":
        response = await api.get(RECORDS, params={**PARAMS, "format": fmt})
    else:
        response = await api.get(RECORDS, params=PARAMS, headers={"Accept": MEDIA[fmt]})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(MEDIA[fmt])
    assert rows_of(stored, fmt, response.content) == from_json(stored.dataset, page["records"])
    assert response.headers["baylink-next-cursor"] == page["next_cursor"]
    # The store grew by one event between the two answers: the first request's access record.
    assert int(response.headers["baylink-current-to-position"]) == page["current_to_position"] + 1


async def test_the_next_cursor_of_a_parquet_page_continues_where_it_ended(
    api: httpx.AsyncClient, stored: StoredReadings
) -> None:
    first = await api.get(RECORDS, params={**PARAMS, "format": "parquet"})
    second = await api.get(
        RECORDS,
        params={**PARAMS, "format": "parquet", "cursor": first.headers["baylink-next-cursor"]},
    )

    rows = rows_of(stored, "parquet", first.content) + rows_of(stored, "parquet", second.content)
    expected = stored.expected(region="gd-shenzhen", start=START)
    assert rows == expected[: len(rows)]
    assert len(rows) == min(len(expected), 1_400)


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        ("text/csv;q=0.5, application/vnd.apache.parquet", MEDIA["parquet"]),
        ("image/png, */*;q=0.1", "application/json"),
        ("text/*", MEDIA["csv"]),
        ("application/json;q=0, text/csv;q=0.2", MEDIA["csv"]),
    ],
)
async def test_the_accept_header_is_honoured_by_quality(
    api: httpx.AsyncClient, accept: str, media: str
) -> None:
    response = await api.get(RECORDS, params={"limit": 3}, headers={"Accept": accept})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media)


async def test_the_format_parameter_wins_over_the_accept_header(api: httpx.AsyncClient) -> None:
    response = await api.get(
        RECORDS, params={"limit": 3, "format": "csv"}, headers={"Accept": "image/png"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
