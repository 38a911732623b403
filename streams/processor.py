"""What the ingest agent does with one Kafka message, as a plain, separately tested object.

The event store is the exactly-once boundary: each message position is tracked in the same
transaction as the batch it produced, so a redelivered message is recognised and skipped,
and a record sent twice (same dataset and key) is stored once.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from connectors.crs import ProjNormaliser
from connectors.geometry_inspector import ShapelyInspector
from domain.dataset import DatasetDefinition
from domain.errors import DatasetNotFoundError
from domain.geo import CoordinateNormaliser
from domain.ingest import ChainHead, chain_id_for, next_batch
from domain.provenance import Provenance
from domain.record import NormalisedRecord, RecordValidator
from domain.region import RegionRegistry
from domain.rejection import RejectedRecord, RejectionReason, excerpt_of
from observability.propagation import context_from_headers
from storage.catalog import Catalog
from storage.errors import BatchConflictError
from storage.ingestion import IngestLedger
from storage.recorders import RecordIndexEntry, index_entry
from streams import faults, wire
from streams.errors import WireError
from streams.ingest_telemetry import (
    batch_duration,
    count_outcome,
    ingest_delay,
    tracer,
)
from streams.topics import dataset_of_ingest_topic

log = logging.getLogger("baylink.streams.processor")

Position = tuple[str, int]
HeaderItems = Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one message."""

    stored: bool
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    notification_id: int | None = None


SKIPPED = Outcome(stored=False)


@dataclass(frozen=True, slots=True)
class Message:
    """The parts of a Kafka message the processor needs."""

    offset: int
    value: bytes | None
    headers: HeaderItems


@dataclass(frozen=True, slots=True)
class Reading:
    """One message, decoded and validated, before duplicates are removed."""

    accepted: list[NormalisedRecord]
    rejected: list[RejectedRecord]
    provenance: Provenance


class IngestProcessor:
    """Validates one message's batch and stores it with its Kafka position, exactly once."""

    def __init__(
        self,
        ledger: IngestLedger,
        catalog: Catalog,
        regions: RegionRegistry | None = None,
        normaliser: CoordinateNormaliser | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.ledger = ledger
        self.catalog = catalog
        self.regions = regions or RegionRegistry.default()
        self.normaliser = normaliser or ProjNormaliser()
        self.clock = clock
        self._validators: dict[str, RecordValidator] = {}
        self._heads: dict[Position, ChainHead] = {}
        self._tracked: dict[Position, int | None] = {}

    def forget(self, positions: Sequence[Position] | None = None) -> None:
        """Drop cached chain heads and positions, e.g. when partitions move to another worker."""
        if positions is None:
            self._heads.clear()
            self._tracked.clear()
            return
        for position in positions:
            self._heads.pop(position, None)
            self._tracked.pop(position, None)

    def process(
        self, topic: str, partition: int, offset: int, value: bytes | None, headers: HeaderItems
    ) -> Outcome:
        """One message; see ``process_many``."""
        return self.process_many(topic, partition, [Message(offset, value, headers)])[0]

    def process_many(
        self, topic: str, partition: int, messages: Sequence[Message]
    ) -> list[Outcome]:
        """Messages of one partition, in offset order, stored in one transaction.

        Every message still becomes its own batch event on the chain; only the commit, the
        duplicate lookup and the tracking row are shared.
        """
        position = (topic, partition)
        if position not in self._tracked:
            self._tracked[position] = self.ledger.resume_offset(topic, partition)
        try:
            # Optimistic: the record index's unique key rejects a transaction holding a record
            # stored before, so the common case needs no lookup first.
            return self._store(topic, partition, messages, look_up_duplicates=False)
        except BatchConflictError:
            # A record sent before, or another worker (before a rebalance settled) or a retry
            # got there first: reload where the partition stands and look everything up.
            self.forget([position])
            self._tracked[position] = self.ledger.resume_offset(topic, partition)
            return self._store(topic, partition, messages, look_up_duplicates=True)

    def _store(
        self,
        topic: str,
        partition: int,
        messages: Sequence[Message],
        *,
        look_up_duplicates: bool,
    ) -> list[Outcome]:
        tracked = self._tracked[(topic, partition)]
        fresh_messages = sorted(
            (m for m in messages if tracked is None or m.offset > tracked), key=lambda m: m.offset
        )
        outcomes = {m.offset: SKIPPED for m in messages}
        if not fresh_messages:
            return [outcomes[m.offset] for m in messages]
        parsed = dataset_of_ingest_topic(topic)
        dataset_id = parsed[0] if parsed else topic
        # Looked up outside any catch-all: a store outage must be retried, not rejected.
        validator = self._validator_or_none(topic, dataset_id)
        started = time.perf_counter()
        # One consumer span per message, child of the connector's publish span (traceparent).
        spans = [self._message_span(topic, partition, m, dataset_id) for m in fresh_messages]
        try:
            stored = self._validate_and_store(
                topic, partition, fresh_messages, dataset_id, validator, spans, look_up_duplicates
            )
        except BatchConflictError:
            for span in spans:
                span.add_event("conflict: records or position stored before; looking them up")
                span.end()
            raise
        except BaseException as error:
            for span in spans:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
                span.end()
            raise
        elapsed = time.perf_counter() - started
        stored_at = self.clock()
        batch_duration.record(elapsed, {"dataset": dataset_id})
        for message, span, (reading, fresh, duplicates) in zip(
            fresh_messages, spans, stored, strict=True
        ):
            count_outcome(
                dataset_id, reading.provenance.region, fresh, reading.rejected, duplicates
            )
            ingest_delay.record(
                max((stored_at - reading.provenance.received_at).total_seconds(), 0.0),
                {"dataset": dataset_id},
            )
            span.set_attributes(
                {
                    "baylink.records.accepted": len(fresh),
                    "baylink.records.rejected": len(reading.rejected),
                    "baylink.records.duplicate": duplicates,
                }
            )
            span.end()
            outcomes[message.offset] = Outcome(
                True, len(fresh), len(reading.rejected), duplicates, None
            )
        return [outcomes[m.offset] for m in messages]

    def _message_span(
        self, topic: str, partition: int, message: Message, dataset_id: str
    ) -> trace.Span:
        return tracer.start_span(
            f"ingest {dataset_id}",
            context=context_from_headers(message.headers),
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": topic,
                "messaging.destination.partition.id": str(partition),
                "messaging.kafka.offset": message.offset,
                "baylink.dataset": dataset_id,
            },
        )

    def _validate_and_store(
        self,
        topic: str,
        partition: int,
        fresh_messages: Sequence[Message],
        dataset_id: str,
        validator: RecordValidator | None,
        spans: Sequence[trace.Span],
        look_up_duplicates: bool,
    ) -> list[tuple[Reading, list[NormalisedRecord], int]]:
        """Every message becomes a batch event; all of them and the position go in one
        transaction. Returns each message's reading, fresh records and duplicate count."""
        now = self.clock()
        readings = []
        for message, span in zip(fresh_messages, spans, strict=True):
            with trace.use_span(span, end_on_exit=False):
                readings.append(self._read(topic, partition, message, dataset_id, validator, now))
        fresh_records = self._without_duplicates(
            [r.accepted for r in readings], look_up=look_up_duplicates
        )
        head = self._head(topic, partition, dataset_id)
        events = []
        record_index: list[RecordIndexEntry] = []
        for message, reading, (fresh, duplicates) in zip(
            fresh_messages, readings, fresh_records, strict=True
        ):
            event = next_batch(
                head,
                dataset_id=dataset_id,
                partition=partition,
                source=f"{topic}:{partition}@{message.offset}",
                provenance=reading.provenance,
                accepted=fresh,
                rejected=reading.rejected,
                duplicate_count=duplicates,
            )
            events.append(event)
            record_index.append(
                index_entry(
                    event.originator_id, event.originator_version, [cast(str, r[0]) for r in fresh]
                )
            )
            head = ChainHead.after(event)
        faults.reached(faults.BEFORE_STORE_COMMIT)
        last_offset = fresh_messages[-1].offset
        # The append is one transaction for all the messages: a child of the first message's
        # span, linked to the others'.
        with tracer.start_as_current_span(
            "eventstore append",
            context=trace.set_span_in_context(spans[0]),
            links=[trace.Link(span.get_span_context()) for span in spans[1:]],
            attributes={
                "baylink.dataset": dataset_id,
                "baylink.batches": len(events),
                "baylink.records": sum(len(fresh) for fresh, _ in fresh_records),
                "messaging.destination.partition.id": str(partition),
                "messaging.kafka.offset": last_offset,
            },
        ) as append_span:
            position = self.ledger.record_many(
                events,
                topic=topic,
                partition=partition,
                offset=last_offset,
                record_index=record_index,
            )
            append_span.set_attribute("baylink.log.position", position)
        self._heads[(topic, partition)] = head
        self._tracked[(topic, partition)] = last_offset
        return [
            (reading, fresh, duplicates)
            for reading, (fresh, duplicates) in zip(readings, fresh_records, strict=True)
        ]

    def _read(
        self,
        topic: str,
        partition: int,
        message: Message,
        dataset_id: str,
        validator: RecordValidator | None,
        now: datetime,
    ) -> Reading:
        """Decode and validate one message; whatever is wrong becomes a rejection."""
        value, headers = message.value, message.headers
        accepted: list[NormalisedRecord] = []
        rejected: list[RejectedRecord] = []
        provenance: Provenance | None = None
        try:
            if validator is None:
                raise WireError(
                    RejectionReason.UNKNOWN_DATASET, f"no dataset {dataset_id!r} is registered"
                )
            batch = wire.decode(value, headers, dataset_id, rows=False)
            provenance = batch.provenance
            if batch.payload_rejection is not None:
                reason, text = batch.payload_rejection
                rejected.append(
                    RejectedRecord(-1, RejectionReason.BAD_PAYLOAD, f"{reason}: {text}")
                )
            else:
                result = validator.validate_payload(batch.payload, provenance.region, now)
                if result is None:  # some row is off: the general rules say which and why
                    rows = wire.decode_rows(batch.payload)
                    result = validator.validate(rows, provenance.region, now)
                accepted, rejected = result.accepted, result.rejected
        except WireError as error:
            rejected = [RejectedRecord(-1, error.reason, error.message, None, excerpt_of(value))]
        except Exception as error:  # a poison message must never stall its partition
            log.exception("unexpected failure reading %s[%s]@%s", topic, partition, message.offset)
            accepted, rejected = (
                [],
                [
                    RejectedRecord(
                        -1,
                        RejectionReason.MALFORMED_BATCH,
                        f"message could not be read: {type(error).__name__}: {error}",
                        None,
                        excerpt_of(value),
                    )
                ],
            )
        if provenance is None:
            provenance = self._provenance_of_unreadable(
                topic, partition, message.offset, value, headers
            )
        return Reading(accepted, rejected, provenance)

    def _validator_or_none(self, topic: str, dataset_id: str) -> RecordValidator | None:
        validator = self._validators.get(topic)
        if validator is None:
            try:
                definition = self.catalog.get(dataset_id, self.regions)
            except DatasetNotFoundError:
                return None
            validator = self._validators[topic] = self._make_validator(definition)
        return validator

    def _make_validator(self, definition: DatasetDefinition) -> RecordValidator:
        return RecordValidator(
            definition, self.regions, self.normaliser, geometry_inspector=ShapelyInspector()
        )

    def _head(self, topic: str, partition: int, dataset_id: str) -> ChainHead:
        head = self._heads.get((topic, partition))
        if head is None:
            head = self.ledger.chain_head(chain_id_for(dataset_id, partition))
        return head

    def _without_duplicates(
        self, accepted: list[list[NormalisedRecord]], *, look_up: bool
    ) -> list[tuple[list[NormalisedRecord], int]]:
        """Per message: the records not stored before nor earlier in this group, and how many
        were duplicates. Without ``look_up`` every record counts as fresh: a duplicate then
        breaks the record index's unique key, and the group is stored again with look-up."""
        if not look_up:
            return [(records, 0) for records in accepted]
        ids = [str(r[0]) for records in accepted for r in records]
        seen = self.ledger.existing_record_ids(ids) if ids else set()
        out = []
        for records in accepted:
            fresh: list[NormalisedRecord] = []
            for record in records:
                record_id = str(record[0])
                if record_id not in seen:
                    seen.add(record_id)
                    fresh.append(record)
            out.append((fresh, len(records) - len(fresh)))
        return out

    def _provenance_of_unreadable(
        self, topic: str, partition: int, offset: int, value: bytes | None, headers: HeaderItems
    ) -> Provenance:
        """The message's own provenance if its header is readable, else what the broker says."""
        try:
            return wire.decode_provenance(headers)
        except WireError:
            return Provenance(
                source_uri=f"kafka://{topic}/{partition}/{offset}",
                received_at=self.clock(),
                payload_sha256=hashlib.sha256(value or b"").hexdigest(),
                connector="unknown",
                connector_version="unknown",
                region="unknown",
                wire_schema_version=0,
            )
