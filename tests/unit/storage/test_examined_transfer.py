"""What an examining worker sends the verifying pass arrives as the worker examined it, or not
at all: a value that msgpack cannot carry as the pass expects makes the pass examine the
range again itself, never link a changed value."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import msgspec
from eventsourcing.persistence import Notification
from hypothesis import given
from hypothesis import strategies as st

from domain.ingest import BatchFacts, ChainFault
from storage.log_examination import (
    BATCH,
    FOUND,
    IN_ORDER,
    PLAIN,
    UNSENDABLE,
    Examined,
    received,
    sendable,
)

texts = st.text(max_size=20)
faults = st.none() | st.builds(ChainFault, texts, texts)
facts = st.builds(
    BatchFacts,
    st.binary(min_size=16, max_size=16),
    st.integers(0, 2**63 - 1),
    texts,
    texts,
    texts,
    st.integers(0, 2**31),
    st.integers(0, 2**31),
    st.integers(0, 2**31),
    st.integers(0, 2**63 - 1),
    st.integers(0, 2**63 - 1),
    faults,
    faults,
)
leaves = st.binary(min_size=32, max_size=32)
stored_events = st.builds(
    Notification,
    id=st.integers(1, 2**40),
    originator_id=st.uuids() | texts,
    originator_version=st.integers(0, 2**40),
    topic=texts,
    state=st.binary(max_size=40),
)


@st.composite
def examined_ranges(draw: st.DrawFn) -> list[Examined]:
    kinds = draw(st.lists(st.sampled_from([PLAIN, BATCH, IN_ORDER, FOUND]), max_size=12))
    examined: list[Examined] = []
    for position, kind in enumerate(kinds, start=1):
        rest: Any = None
        leaf = draw(leaves)
        if kind == BATCH:
            rest = draw(facts)
        elif kind == IN_ORDER:
            rest = draw(stored_events)
            rest = Notification(
                id=position,
                originator_id=rest.originator_id,
                originator_version=rest.originator_version,
                topic=rest.topic,
                state=rest.state,
            )
        elif kind == FOUND:
            rest = (draw(texts), draw(texts))
            leaf = draw(st.just(b"") | leaves)
        examined.append((position, leaf, kind, rest))
    return examined


@given(examined_ranges())
def test_a_range_arrives_as_it_was_examined(examined: list[Examined]) -> None:
    before = list(examined)

    arrived = received(sendable(examined))

    assert arrived == examined
    assert examined == before  # the worker's own list is left as it was
    for sent, got in zip(examined, arrived or [], strict=True):
        assert type(got[3]) is type(sent[3])
        if got[2] == IN_ORDER:
            assert type(got[3].originator_id) is type(sent[3].originator_id)


def batch(**changes: Any) -> Examined:
    facts = BatchFacts(uuid4().bytes, 3, "a" * 64, "b" * 64, "ds", 0, 5, 0, 15, 0, None, None)
    return 7, b"\x01" * 32, BATCH, msgspec.structs.replace(facts, **changes)


def test_a_value_of_another_kind_than_examining_expects_is_not_carried() -> None:
    # Tampered events can put any stored value into a batch's facts.
    for changed in ({"previous_hash": 12}, {"record_count": True}, {"dataset_id": b"ds"}):
        assert received(sendable([batch(**changed)])) is None, changed


def test_a_value_msgpack_cannot_encode_is_not_sent() -> None:
    assert sendable([batch(dataset_id=object())]) == UNSENDABLE
    assert received(UNSENDABLE) is None


def test_a_stored_event_keeps_its_originator_id_type() -> None:
    event_id = uuid4()
    stored = Notification(id=9, originator_id=event_id, originator_version=2, topic="t", state=b"s")
    arrived = received(sendable([(9, b"\x02" * 32, IN_ORDER, stored)]))

    assert arrived == [(9, b"\x02" * 32, IN_ORDER, stored)]
    assert isinstance(arrived[0][3].originator_id, UUID)
