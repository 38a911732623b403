"""Where a replay ends: a log position or an ISO-8601 time with its offset, else one error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage.errors import ReplayError
from storage.log_replay import parse_until

_OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@given(st.integers(min_value=0, max_value=2**63))
def test_digits_are_a_log_position(position: int) -> None:
    assert parse_until(f" {position} ") == position


@given(st.datetimes(timezones=_OFFSETS), st.sampled_from(["T", " "]))
def test_a_time_with_its_offset_is_that_moment(moment: datetime, separator: str) -> None:
    assert parse_until(moment.isoformat(sep=separator)) == moment


def test_z_is_utc() -> None:
    assert parse_until("2026-11-27T12:00:00Z") == datetime(2026, 11, 27, 12, tzinfo=UTC)


@given(st.datetimes())
def test_a_time_without_an_offset_is_refused_naming_it(moment: datetime) -> None:
    with pytest.raises(ReplayError, match="names no UTC offset"):
        parse_until(moment.isoformat())


@given(st.text())
def test_any_text_is_an_end_or_one_line_naming_it(text: str) -> None:
    try:
        parsed: int | datetime | ReplayError = parse_until(text)
    except ReplayError as error:
        parsed = error
    if isinstance(parsed, ReplayError):
        assert str(parsed).startswith(f"--until {text!r} ")
        assert "\n" not in str(parsed)
    else:
        assert parse_until(str(parsed) if isinstance(parsed, int) else parsed.isoformat()) == parsed


@pytest.mark.parametrize("text", ["yesterday", "-3", "2026-13-01T00:00Z", "9" * 5000, ""])
def test_what_is_neither_is_refused(text: str) -> None:
    with pytest.raises(ReplayError, match="--until"):
        parse_until(text)
