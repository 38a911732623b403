"""Properties every connector keeps, whatever the input."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from connectors.errors import PayloadError
from connectors.gtfs_realtime import parse_vehicle_positions
from connectors.payload import ParsedPayload
from connectors.tabular import parse_csv, parse_jsonl
from domain.dataset import DatasetDefinition

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
    parsers: list[Callable[[], ParsedPayload]] = [
        lambda: parse_csv(data, DATASET),
        lambda: parse_jsonl(data, DATASET),
        lambda: parse_vehicle_positions(data),
    ]
    for parse in parsers:
        outcome: ParsedPayload | PayloadError
        try:
            outcome = parse()
        except PayloadError as error:
            outcome = error
        if isinstance(outcome, PayloadError):
            assert outcome.reason
            assert str(outcome)
        else:
            assert all(isinstance(row, dict) for row in outcome.rows)


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_either_parse_or_raise_payload_error(data: bytes) -> None:
    _never_anything_but_payload_error(data)


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
