"""Choosing the format of a page of records: the format parameter, then the Accept header."""

from __future__ import annotations

import pytest

from api.errors import NotAcceptableError
from api.media import RecordFormat, negotiate


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, RecordFormat.JSON),
        ("", RecordFormat.JSON),
        ("*/*", RecordFormat.JSON),
        ("application/json", RecordFormat.JSON),
        ("text/csv", RecordFormat.CSV),
        ("TEXT/CSV; charset=utf-8", RecordFormat.CSV),
        ("application/vnd.apache.arrow.stream", RecordFormat.ARROW),
        ("application/vnd.apache.parquet", RecordFormat.PARQUET),
        ("text/csv;q=0.4, application/vnd.apache.parquet;q=0.9", RecordFormat.PARQUET),
        ("image/png, text/*;q=0.5", RecordFormat.CSV),
        ("*/*;q=0.1, application/vnd.apache.arrow.stream", RecordFormat.ARROW),
        ("text/csv, application/json", RecordFormat.CSV),
        ("application/json;q=0, */*", RecordFormat.JSON),
        ("text/csv;q=nonsense, application/json", RecordFormat.JSON),
    ],
)
def test_the_accept_header_chooses_the_best_format_served(
    accept: str | None, chosen: RecordFormat
) -> None:
    assert negotiate(None, accept) is chosen


def test_the_format_parameter_wins_over_any_accept_header() -> None:
    assert negotiate(RecordFormat.PARQUET, "image/png") is RecordFormat.PARQUET


@pytest.mark.parametrize("accept", ["image/png", "text/html, application/xml", "text/csv;q=0"])
def test_a_client_accepting_none_of_the_formats_is_told_which_are_served(accept: str) -> None:
    with pytest.raises(NotAcceptableError, match="text/csv"):
        negotiate(None, accept)
