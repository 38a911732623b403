"""A stream's event ids read back as the point it resumes from: ``P`` after all of position
P, ``P:k`` after the first k records of P; anything else is refused with what was expected."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.subscription_stream import BadResumePointError, ResumePoint

positions = st.integers(min_value=1, max_value=10**15)
ordinals = st.integers(min_value=1, max_value=10**8)


@given(positions, ordinals)
def test_an_event_id_resumes_after_its_record(position: int, ordinal: int) -> None:
    point = ResumePoint.parse(f"{position}:{ordinal}")

    assert (point.after, point.skip) == (position - 1, ordinal)


@given(positions)
def test_a_bare_position_resumes_after_all_of_it(position: int) -> None:
    assert ResumePoint.parse(str(position)) == ResumePoint(position, 0)


@pytest.mark.parametrize("absent", [None, "", "  "])
def test_no_id_starts_at_the_beginning(absent: str | None) -> None:
    assert ResumePoint.parse(absent) == ResumePoint(0, 0)


def _not_an_id(text: str) -> bool:
    stripped = text.strip()
    digits = stripped.replace(":", "", 1)
    return bool(stripped) and not (digits.isascii() and digits.isdecimal())


@given(st.text(max_size=30).filter(_not_an_id))
def test_anything_else_is_refused_naming_the_expected_form(text: str) -> None:
    with pytest.raises(BadResumePointError, match="P or P:k"):
        ResumePoint.parse(text)


@pytest.mark.parametrize("text", ["12:", ":3", "1:2:3", "-1", "1.5", "0x10", "12:a"])
def test_near_misses_are_refused(text: str) -> None:
    with pytest.raises(BadResumePointError):
        ResumePoint.parse(text)
