"""Properties every connector keeps, whatever the input."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.datasets import GTFS_RT_VEHICLE_POSITIONS, load
from connectors.gtfs_realtime import parse_vehicle_positions
from connectors.payload import ParsedPayload
from connectors.tabular import parse_csv, parse_jsonl
from domain.dataset import DatasetDefinition
from tests.support.parser_contract import check_parser_contract

FEED = Path(__file__).resolve().parents[2] / "fixtures" / "gtfs" / "bullrunner-vehicle-positions"
DATASET = DatasetDefinition.from_dict(
    {
        "id": "hk.economic.sample",
        "kind": "economic",
        "owner_region": "hk",
        "title": "Sample",
        "time_field": "at",
        "key_fields": ["at"],
        "fields": [
            {"name": "at", "type": "timestamp"},
            {"name": "label", "type": "string"},
            {"name": "count", "type": "int64"},
            {"name": "amount", "type": "float64"},
            {"name": "flag", "type": "bool"},
        ],
    }
)
VEHICLE_POSITIONS = load(GTFS_RT_VEHICLE_POSITIONS)
# Each parser meets at least a thousand generated inputs per property.
THOROUGH = settings(max_examples=1000, deadline=None)

_offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
_values: dict[str, st.SearchStrategy[object]] = {
    "at": st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=_offsets
    ),
    # Surrogates cannot be written as UTF-8; the empty string is how CSV says "missing".
    "label": st.text(st.characters(exclude_categories=["Cs"]), min_size=1),
    "count": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "amount": st.floats(allow_nan=False),
    "flag": st.booleans(),
}
_rows = st.lists(
    st.fixed_dictionaries({name: st.none() | values for name, values in _values.items()})
)


def _normalised(row: dict[str, object]) -> dict[str, object]:
    at = row["at"]
    return {**row, "at": at.astimezone(UTC) if isinstance(at, datetime) else at}


@THOROUGH
@given(_rows)
def test_rows_written_by_csv_dictwriter_read_back_with_the_same_values(
    rows: list[dict[str, object]],
) -> None:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=list(_values))
    writer.writeheader()
    writer.writerows(rows)

    parsed = parse_csv(out.getvalue().encode(), DATASET)

    assert parsed.rows == [_normalised(row) for row in rows]


def _never_anything_but_payload_error(data: bytes) -> None:
    parsers: list[tuple[Callable[[], ParsedPayload], DatasetDefinition]] = [
        (lambda: parse_csv(data, DATASET), DATASET),
        (lambda: parse_jsonl(data, DATASET), DATASET),
        (lambda: parse_vehicle_positions(data), VEHICLE_POSITIONS),
    ]
    for parse, dataset in parsers:
        check_parser_contract(parse, dataset)


@THOROUGH
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_either_parse_or_raise_payload_error(data: bytes) -> None:
    _never_anything_but_payload_error(data)


@THOROUGH
@given(
    st.integers(min_value=0, max_value=415),
    st.integers(min_value=0, max_value=415),
    st.binary(max_size=16),
)
def test_damaged_real_feeds_either_parse_or_raise_payload_error(
    start: int, length: int, splice: bytes
) -> None:
    # Splicing bytes into a real feed reaches nested messages random bytes rarely do.
    feed = FEED.read_bytes()
    _never_anything_but_payload_error(feed[:start] + splice + feed[start + length :])


TABULAR = Path(__file__).resolve().parents[2] / "fixtures" / "tabular"
ROAD_SPEED = DatasetDefinition.from_dict(
    yaml.safe_load((TABULAR / "road-speed.yaml").read_text(encoding="utf-8"))
)


@THOROUGH
@given(
    st.sampled_from(["road-speed.csv", "road-speed.jsonl"]),
    st.integers(min_value=0, max_value=2000),
    st.integers(min_value=0, max_value=64),
    st.binary(max_size=16),
)
def test_damaged_real_tables_either_parse_or_raise_payload_error(
    name: str, start: int, length: int, splice: bytes
) -> None:
    table = (TABULAR / name).read_bytes()
    damaged = table[:start] + splice + table[start + length :]
    parse = parse_csv if name.endswith(".csv") else parse_jsonl
    check_parser_contract(lambda: parse(damaged, ROAD_SPEED), ROAD_SPEED)


@THOROUGH
@given(_rows.filter(bool))  # no lines at all is an empty payload, refused as such
def test_rows_written_as_json_lines_read_back_with_the_same_values(
    rows: list[dict[str, object]],
) -> None:
    lines = [
        json.dumps({k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()})
        for row in rows
    ]

    parsed = parse_jsonl("\n".join(lines).encode(), DATASET)

    assert parsed.rows == [_normalised(row) for row in rows]
