"""Batch hashes are taken over the bytes the standard library's sorted, compact JSON gives:
the fast encoder must give the same bytes for every value a batch's hashed fields can hold,
or chains stored before it would no longer verify."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.canonical_json import canonical_json

text = st.text(st.characters(exclude_categories=["Cs"]))
scalars = st.none() | st.booleans() | st.integers(-(2**80), 2**80) | text
values = st.recursive(
    scalars, lambda inner: st.lists(inner) | st.dictionaries(text, inner), max_leaves=30
)


def standard(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@settings(max_examples=2000)
@given(values)
def test_the_bytes_are_the_standard_library_s(value: Any) -> None:
    assert canonical_json(value) == standard(value)


@pytest.mark.parametrize(
    "value",
    [
        ["\x00\x1f\x7f\u2028\U0001f600", '"\\/'],
        {"b": 1, "a": [None, True], "é": {"z": "", "Z": 0}},
        [(1, "x"), ("y", None)],
        {2: "integer keys", 1: "are written as text"},
    ],
)
def test_awkward_values_give_the_standard_bytes(value: Any) -> None:
    assert canonical_json(value) == standard(value)


def test_text_that_is_not_unicode_is_refused_as_before() -> None:
    with pytest.raises(UnicodeEncodeError):
        canonical_json(["\ud800"])
