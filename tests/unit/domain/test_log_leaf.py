"""A log leaf commits to every field of a stored event: any change gives another leaf."""

from __future__ import annotations

import dataclasses
import hashlib
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import LogLeafError
from domain.log_leaf import FORMAT_LABEL, LogLeaf, stored_leaf_hash
from domain.merkle import leaf_hash

ORIGINATOR = UUID("6f1c3d2e-0000-4000-8000-000000000001")

leaves = st.builds(
    LogLeaf,
    position=st.integers(1, 2**64 - 1),
    topic=st.text(min_size=1, max_size=80),
    originator_id=st.uuids(),
    originator_version=st.integers(0, 2**64 - 1),
    state_sha256=st.binary(min_size=32, max_size=32),
)


def sample() -> LogLeaf:
    return LogLeaf.of_stored_event(
        7, "domain.ingest:IngestChain.BatchRecorded", ORIGINATOR, 3, b"x"
    )


def test_a_leaf_is_the_fixed_layout_after_its_label() -> None:
    leaf = sample()

    assert leaf.canonical_bytes() == (
        FORMAT_LABEL
        + (7).to_bytes(8, "big")
        + (3).to_bytes(8, "big")
        + ORIGINATOR.bytes
        + hashlib.sha256(b"x").digest()
        + (39).to_bytes(4, "big")
        + b"domain.ingest:IngestChain.BatchRecorded"
    )
    assert leaf.hash() == leaf_hash(leaf.canonical_bytes())


@given(leaves, leaves)
def test_different_leaves_never_share_bytes(first: LogLeaf, second: LogLeaf) -> None:
    assert (first.canonical_bytes() == second.canonical_bytes()) == (first == second)


@given(leaves, st.data())
def test_changing_any_one_field_changes_the_leaf_hash(leaf: LogLeaf, data: st.DataObject) -> None:
    field = data.draw(st.sampled_from([f.name for f in dataclasses.fields(LogLeaf)]))
    replacement = {
        "position": st.integers(1, 2**64 - 1),
        "topic": st.text(min_size=1, max_size=80),
        "originator_id": st.uuids(),
        "originator_version": st.integers(0, 2**64 - 1),
        "state_sha256": st.binary(min_size=32, max_size=32),
    }[field]
    value = data.draw(replacement.filter(lambda v: v != getattr(leaf, field)))

    changed = dataclasses.replace(leaf, **{field: value})  # type: ignore[arg-type]

    assert changed.hash() != leaf.hash()


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_the_leaf_digests_the_stored_state(state: bytes, other: bytes) -> None:
    first = LogLeaf.of_stored_event(1, "t", ORIGINATOR, 1, state)
    second = LogLeaf.of_stored_event(1, "t", ORIGINATOR, 1, other)

    assert (first.hash() == second.hash()) == (state == other)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"position": 0}, "log position"),
        ({"position": 2**64}, "log position"),
        ({"position": True}, "log position"),
        ({"originator_version": -1}, "originator version"),
        ({"topic": ""}, "event topic"),
        ({"originator_id": str(ORIGINATOR)}, "originator id"),
        ({"state_sha256": b"\x00" * 31}, "state digest"),
        ({"state_sha256": "00" * 32}, "state digest"),
    ],
)
def test_a_malformed_leaf_is_refused_naming_the_field(
    changes: dict[str, object], named: str
) -> None:
    with pytest.raises(LogLeafError, match=named):
        dataclasses.replace(sample(), **changes)  # type: ignore[arg-type]


def test_a_topic_that_is_not_unicode_text_is_refused() -> None:
    with pytest.raises(LogLeafError, match="topic"):
        dataclasses.replace(sample(), topic="\ud800").canonical_bytes()


@given(
    position=st.integers(-2, 2**64 + 1),
    topic=st.text(max_size=40),
    originator_id=st.uuids(),
    version=st.integers(-2, 2**64 + 1),
    state=st.binary(max_size=64),
)
def test_the_fast_leaf_hash_is_the_leaf_s_hash_or_the_same_refusal(
    position: int, topic: str, originator_id: UUID, version: int, state: bytes
) -> None:
    try:
        expected: bytes | str = LogLeaf.of_stored_event(
            position, topic, originator_id, version, state
        ).hash()
    except LogLeafError as error:
        expected = str(error)
    try:
        fast: bytes | str = stored_leaf_hash(position, topic, originator_id, version, state)
    except LogLeafError as error:
        fast = str(error)

    assert fast == expected


@pytest.mark.parametrize(
    ("position", "version", "state"),
    [(True, 1, b"x"), (1, False, b"x"), (1.0, 1, b"x"), (0, 1, b"x")],
)
def test_values_of_the_wrong_kind_take_the_checked_path_and_are_refused(
    position: object, version: object, state: object
) -> None:
    with pytest.raises(LogLeafError):
        stored_leaf_hash(position, "t", ORIGINATOR, version, state)  # type: ignore[arg-type]
