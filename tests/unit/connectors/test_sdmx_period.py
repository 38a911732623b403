"""SDMX time periods start at 00:00 UTC of their first day; what is not a period does not read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.sdmx_period import period_start


@pytest.mark.parametrize(
    ("period", "start"),
    [
        ("2010", (2010, 1, 1)),
        ("2010-A1", (2010, 1, 1)),
        ("2010-S2", (2010, 7, 1)),
        ("2010-T3", (2010, 9, 1)),
        ("2010-Q1", (2010, 1, 1)),
        ("2010-Q4", (2010, 10, 1)),
        ("2010Q3", (2010, 7, 1)),
        ("2010-08", (2010, 8, 1)),
        ("2010-M08", (2010, 8, 1)),
        ("2010M12", (2010, 12, 1)),
        ("2010-W01", (2010, 1, 4)),  # ISO week 1 of 2010 begins on Monday 4 January
        ("2009-W53", (2009, 12, 28)),
        ("2010-08-31", (2010, 8, 31)),
        ("2010-D032", (2010, 2, 1)),
        ("2010-01-01/P1M", (2010, 1, 1)),
        (" 2010-08 ", (2010, 8, 1)),
    ],
)
def test_calendar_periods_start_at_midnight_utc_of_their_first_day(
    period: str, start: tuple[int, int, int]
) -> None:
    assert period_start(period) == datetime(*start, tzinfo=UTC)


def test_a_date_time_with_an_offset_is_converted_to_utc() -> None:
    assert period_start("2010-08-31T08:00:00+08:00") == datetime(2010, 8, 31, tzinfo=UTC)
    assert period_start("2010-08-31T08:00Z") == datetime(2010, 8, 31, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    "period",
    [
        "",
        "2010-13",
        "2010-Q5",
        "2010-Q0",
        "2010-S3",
        "2010-W54",
        "2010-02-30",
        "2010-D366",  # 2010 has 365 days
        "2010-08-31T08:00:00",  # no offset: not guessed to be UTC
        "10-08",
        "August 2010",
        "\uff12\uff10\uff11\uff10",  # full-width digits are not ASCII digits
    ],
)
def test_what_is_not_a_period_does_not_read(period: str) -> None:
    assert period_start(period) is None
