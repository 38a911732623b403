"""Backoff delays: full jitter under a doubling ceiling that stops at the cap."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.backoff import Backoff


@settings(max_examples=1000, deadline=None)
@given(
    base=st.floats(min_value=0.001, max_value=100),
    extra=st.floats(min_value=0, max_value=10_000),
    draws=st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=80),
)
def test_each_delay_lies_between_zero_and_a_ceiling_that_doubles_up_to_the_cap(
    base: float, extra: float, draws: list[float]
) -> None:
    cap = base + extra
    values = iter(draws)
    backoff = Backoff(base=base, cap=cap, random=lambda: next(values))
    ceilings = []
    for draw in draws:
        ceiling = backoff.ceiling()
        ceilings.append(ceiling)
        assert backoff.next_delay() == draw * ceiling
        assert 0 <= draw * ceiling <= cap
    assert ceilings[0] == base
    for before, after in itertools.pairwise(ceilings):
        assert after == min(cap, before * 2)


def test_reset_after_a_success_starts_from_the_base_again() -> None:
    backoff = Backoff(base=2.0, cap=100.0, random=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(3)] == [2.0, 4.0, 8.0]
    backoff.reset()
    assert backoff.next_delay() == 2.0


@pytest.mark.parametrize(("base", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_a_backoff_without_a_positive_base_below_its_cap_is_refused(
    base: float, cap: float
) -> None:
    with pytest.raises(ValueError, match="0 < base <= cap"):
        Backoff(base=base, cap=cap)
