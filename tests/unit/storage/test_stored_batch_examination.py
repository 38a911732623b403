"""Examining a stored batch decodes its state straight into its fields instead of building the
event through the library's mapper: what it finds must be what the event would have shown,
for any stored state, tampered or not."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import msgspec
from eventsourcing.persistence import Mapper, Notification
from hypothesis import given
from hypothesis import strategies as st

from domain.ingest import ChainHead, IngestChain, batch_facts, chain_id_for, next_batch
from domain.provenance import Provenance
from domain.record import record_id_for
from storage.log_examination import (
    BATCH,
    FOUND,
    Examined,
    FindingError,
    StoredBatch,
    decoded,
    examine,
    malformed,
)
from storage.transcoder import MsgpackTranscoder

DATASET = "gba.traffic.sensor-readings"
MAPPER: Mapper[Any] = Mapper(transcoder=MsgpackTranscoder())
PROVENANCE = Provenance(
    "file:///readings.csv", datetime(2026, 1, 2, tzinfo=UTC), "d" * 64, "tabular", "1", "hk", 1
)


def stored_batch(partition: int = 1) -> Notification:
    head = ChainHead.genesis(chain_id_for(DATASET, partition))
    rows: list[list[object]] = [[record_id_for(DATASET, ["s1", 1]), "hk", "s1", 1, 22.3]]
    event = next_batch(
        head,
        dataset_id=DATASET,
        partition=partition,
        source=f"baylink.ingest.{DATASET}.v1:{partition}@0",
        provenance=PROVENANCE,
        accepted=rows,
        rejected=[],
    )
    stored = MAPPER.to_stored_event(event)
    return Notification(
        id=5,
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=stored.state,
    )


def through_the_event(notification: Notification) -> Examined:
    """What examining found when it built the event through the mapper."""
    position, leaf = notification.id, examine(notification, MAPPER)[1]
    try:
        facts = batch_facts(decoded(notification, MAPPER, IngestChain.BatchRecorded))
    except FindingError as found:
        return position, leaf, FOUND, (found.reason, found.message)
    except (TypeError, ValueError, AttributeError, KeyError) as error:
        return position, leaf, FOUND, malformed(notification.topic, error)
    return position, leaf, BATCH, facts


def test_the_stored_fields_are_the_events_fields() -> None:
    event_fields = {f.name for f in dataclasses.fields(IngestChain.BatchRecorded)}
    assert set(StoredBatch.__struct_fields__) == event_fields - {
        "originator_id",
        "originator_version",
    }


def test_an_untampered_batch_gives_the_events_facts() -> None:
    notification = stored_batch()
    examined = examine(notification, MAPPER)

    assert examined == through_the_event(notification)
    assert examined[2] == BATCH
    assert examined[3].content_fault is None
    assert examined[3].chain_id_fault is None


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.lists(st.integers(0, 9), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(0, 9), max_size=3),
    st.datetimes(timezones=st.just(UTC)),
)


@given(
    field=st.sampled_from(StoredBatch.__struct_fields__),
    change=st.one_of(st.just("delete"), values),
    partition=st.integers(0, 3),
)
def test_a_changed_or_missing_field_is_found_as_through_the_event(
    field: str, change: object, partition: int
) -> None:
    notification = stored_batch(partition)
    state = msgspec.msgpack.decode(notification.state)
    if change == "delete":
        del state[field]
    else:
        state[field] = change
    tampered = dataclasses.replace(notification, state=msgspec.msgpack.encode(state))

    examined, expected = examine(tampered, MAPPER), through_the_event(tampered)

    assert examined[:3] == expected[:3]
    if expected[2] == BATCH:
        assert examined[3] == expected[3]
    else:  # the same reason; the sentence may name the failure in other words
        assert examined[3][0] == expected[3][0]


def test_a_state_that_is_not_a_batchs_is_undecodable() -> None:
    for state in (b"\xc1", msgspec.msgpack.encode([1, 2]), msgspec.msgpack.encode("x")):
        notification = dataclasses.replace(stored_batch(), state=state)
        examined = examine(notification, MAPPER)
        assert examined[2] == FOUND
        assert examined[3][0] == "undecodable_event"
        assert through_the_event(notification)[3][0] == "undecodable_event"
