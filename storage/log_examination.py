"""Examining stored events one at a time, apart from their order (ADR 18): each event's Merkle
leaf and, for an ingest batch, what it says of its chain and whether its hash, digest and
record count hold. That is most of a verifying pass's work and needs nothing from the events
before, so worker processes can do it for ranges of the log ahead of the pass, which links
the results in log order.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any, TypeVar
from uuid import UUID

import msgspec
from eventsourcing.persistence import Mapper, Notification
from eventsourcing.utils import get_topic

from domain.errors import DomainError
from domain.ingest import BatchFacts, IngestChain, batch_facts, stored_batch_facts
from domain.snapshot import SnapshotLog
from storage.ledger import LedgerApplication
from storage.transcoder import MsgpackTranscoder
from storage.tree_heads import HEAD_TOPIC, log_leaf_hash

BATCH_TOPIC = get_topic(IngestChain.BatchRecorded)
PUBLISHED_TOPIC = get_topic(SnapshotLog.Published)

# What examining one event gives: (position, leaf hash, what follows, the rest).
PLAIN = 0  # nothing but its leaf to check: the rest is None
BATCH = 1  # an ingest batch: the rest is its BatchFacts
IN_ORDER = 2  # a tree head or snapshot, checked in log order: the rest is the notification
FOUND = 3  # something wrong: the rest is (reason, message); the leaf is b"" if it was the leaf
Examined = tuple[int, bytes, int, Any]

_E = TypeVar("_E")


class FindingError(Exception):
    """A check failed: stops the pass at the event being checked."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def examine(notification: Notification, mapper: Mapper[UUID]) -> Examined:
    position = notification.id
    try:
        leaf = log_leaf_hash(notification)
    except DomainError as error:
        return position, b"", FOUND, ("bad_leaf", f"the event cannot be a Merkle leaf: {error}")
    topic = notification.topic
    if topic == BATCH_TOPIC:
        try:
            facts = _batch_facts(notification, mapper)
        except FindingError as found:
            return position, leaf, FOUND, (found.reason, found.message)
        except (TypeError, ValueError, AttributeError, KeyError) as error:
            return position, leaf, FOUND, malformed(topic, error)
        return position, leaf, BATCH, facts
    if topic in (HEAD_TOPIC, PUBLISHED_TOPIC):
        return position, leaf, IN_ORDER, notification
    return position, leaf, PLAIN, None


class StoredBatch(msgspec.Struct):
    """A stored ``BatchRecorded`` event's state, its values left untyped: what is wrong with
    them is for the batch's hash and the checks after it to find, as with the event."""

    timestamp: Any
    dataset_id: Any
    partition: Any
    source: Any
    provenance: Any
    records: Any
    record_count: Any
    rejections: Any
    duplicate_count: Any
    accepted_total: Any
    rejected_total: Any
    records_digest: Any
    previous_hash: Any
    hash: Any


_stored_batch = msgspec.msgpack.Decoder(StoredBatch)


def _batch_facts(notification: Notification, mapper: Mapper[UUID]) -> BatchFacts:
    # Decoding the state straight into its fields costs less than half of building the event
    # through the mapper (a dict, then the event around it), most of examining a batch.
    if mapper.cipher or mapper.compressor or not isinstance(mapper.transcoder, MsgpackTranscoder):
        return batch_facts(decoded(notification, mapper, IngestChain.BatchRecorded))
    try:
        batch = _stored_batch.decode(notification.state)
        chain_id = notification.originator_id
        if not isinstance(chain_id, UUID):
            chain_id = UUID(chain_id)
    except (msgspec.MsgspecError, ValueError) as error:
        raise FindingError(
            "undecodable_event",
            f"the stored {notification.topic} event cannot be decoded: "
            f"{type(error).__name__}: {error}",
        ) from None
    return stored_batch_facts(chain_id, notification.originator_version, batch)


def malformed(topic: str, error: Exception) -> tuple[str, str]:
    # A decodable event whose values are of the wrong kind: tampered, not a crash.
    return "malformed_event", f"the stored {topic} event holds values of the wrong kind: {error}"


def decoded(notification: Notification, mapper: Mapper[UUID], kind: type[_E]) -> _E:
    """The stored event as ``kind``, or a finding saying why it is not one."""
    try:
        event = mapper.to_domain_event(notification)
    except Exception as error:  # any decoding failure of tampered bytes is a finding
        raise FindingError(
            "undecodable_event",
            f"the stored {notification.topic} event cannot be decoded: "
            f"{type(error).__name__}: {error}",
        ) from None
    if not isinstance(event, kind):
        raise FindingError("undecodable_event", f"the stored event is not a {kind.__name__}")
    # The library fills an event's attributes from whatever the state holds. Comparing the
    # keys view with the names allocates nothing; a set difference did, for every event.
    names, attributes = _field_names(event.__class__), vars(event).keys()
    if not attributes >= names:
        raise FindingError(
            "undecodable_event",
            f"the stored {notification.topic} event lacks {', '.join(sorted(names - attributes))}",
        )
    return event


@cache
def _field_names(kind: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(kind))


class AuditLedger(LedgerApplication):
    """The verifier's view of the shared store: it only reads."""


def examine_range(recorder: Any, mapper: Mapper[UUID], first: int, last: int) -> list[Examined]:
    """Every stored event from log position ``first`` through ``last``, examined."""
    notifications = recorder.select_notifications(first, last - first + 1, stop=last)
    return [examine(notification, mapper) for notification in notifications]


# A range's examined events go from a worker to the pass as msgpack that msgspec decodes
# straight into the tuples and BatchFacts the pass links: pickling them cost the worker about
# 2 µs an event and the pass about 1. The few events that are neither plain nor a batch go
# beside the rest, by their index in the range: findings, and the stored events of heads and
# snapshot publications (originator id as text, whether it was a UUID, version, topic, state).
_Sent = tuple[
    list[tuple[int, bytes, int, BatchFacts | None]],
    dict[int, tuple[str, str]],
    dict[int, tuple[str, bool, int, str, bytes]],
]
_send_encoder = msgspec.msgpack.Encoder()
_sent_decoder = msgspec.msgpack.Decoder(_Sent)
UNSENDABLE = b""  # a range whose examination msgpack cannot carry: the pass examines it again


def sendable(examined: list[Examined]) -> bytes:
    """``examined`` as the pass receives it from a worker."""
    entries = examined
    found: dict[int, Any] = {}
    in_order: dict[int, tuple[str, bool, int, str, bytes]] = {}
    for index, (position, leaf, kind, rest) in enumerate(examined):
        if kind < IN_ORDER:
            continue
        if entries is examined:
            entries = list(examined)
        entries[index] = position, leaf, kind, None
        if kind == FOUND:
            found[index] = rest
        else:
            stored: Notification = rest
            at = stored.originator_id
            in_order[index] = (
                str(at),
                isinstance(at, UUID),
                stored.originator_version,
                stored.topic,
                stored.state,
            )
    try:
        return _send_encoder.encode((entries, found, in_order))
    except (msgspec.EncodeError, TypeError, OverflowError):
        return UNSENDABLE


def received(sent: bytes) -> list[Examined] | None:
    """What a worker sent, as it examined it; None if a value did not survive the trip (a
    tampered event's field of another type than the one examining expects), so the pass
    examines the range again itself."""
    try:
        entries, found, in_order = _sent_decoder.decode(sent)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    examined: list[Examined] = entries
    for index, rest in found.items():
        position, leaf, kind, _ = examined[index]
        examined[index] = position, leaf, kind, rest
    for index, (at, was_uuid, version, topic, state) in in_order.items():
        position, leaf, kind, _ = examined[index]
        stored = Notification(
            id=position,
            originator_id=UUID(at) if was_uuid else at,
            originator_version=version,
            topic=topic,
            state=state,
        )
        examined[index] = position, leaf, kind, stored
    return examined
