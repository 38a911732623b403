"""What the ingest agent does with one Kafka message, as a plain, separately tested object.

The event store is the exactly-once boundary: each message position is tracked in the same
transaction as the batch it produced, so a redelivered message is recognised and skipped,
and a record sent twice (same dataset and key) is stored once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from connectors.crs import ProjNormaliser
from domain.batch_codec import EncodedRecords
from domain.dataset import DatasetDefinition
from domain.errors import DatasetNotFoundError
from domain.geo import CoordinateNormaliser
from domain.ingest import ChainHead, chain_id_for, next_batch
from domain.record import RecordValidator
from domain.region import RegionRegistry
from observability.propagation import context_from_headers
from storage.catalog import Catalog
from storage.errors import BatchConflictError
from storage.ingestion import IngestLedger
from storage.recorders import RecordIndexEntry, index_entry
from streams import faults
from streams.ingest_telemetry import (
    batch_duration,
    count_outcome,
    ingest_delay,
    tracer,
)
from streams.message_reading import HeaderItems, Message, Reading, read_message
from streams.reading_pool import PendingReadings, ReadingPool, make_validator
from streams.topics import dataset_of_ingest_topic

log = logging.getLogger("baylink.streams.processor")

Position = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one message."""

    stored: bool
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    notification_id: int | None = None


SKIPPED = Outcome(stored=False)


class IngestProcessor:
    """Validates one message's batch and stores it with its Kafka position, exactly once."""

    def __init__(
        self,
        ledger: IngestLedger,
        catalog: Catalog,
        regions: RegionRegistry | None = None,
        normaliser: CoordinateNormaliser | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        pool: ReadingPool | None = None,
    ) -> None:
        self.ledger = ledger
        self.catalog = catalog
        self.regions = regions or RegionRegistry.default()
        self.normaliser = normaliser or ProjNormaliser()
        self.clock = clock
        self.pool = pool
        self._validators: dict[str, tuple[DatasetDefinition, RecordValidator]] = {}
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

    def start_reading(
        self, topic: str, partition: int, messages: Sequence[Message]
    ) -> PendingReadings:
        """Decode and validate ``messages`` (in the reader processes, if there are any) while
        the caller goes on; hand the result to ``process_many``."""
        dataset_id = _dataset_of(topic)
        # Looked up outside any catch-all: a store outage must be retried, not rejected.
        definition, validator = self._validator_or_none(topic, dataset_id)
        now = self.clock()
        if self.pool is not None:
            return self.pool.read(topic, partition, messages, dataset_id, definition, now)
        return PendingReadings.done(
            [read_message(topic, partition, m, dataset_id, validator, now) for m in messages]
        )

    def process_many(
        self,
        topic: str,
        partition: int,
        messages: Sequence[Message],
        pending: PendingReadings | None = None,
    ) -> list[Outcome]:
        """Messages of one partition, in offset order, stored in one transaction.

        Every message still becomes its own batch event on the chain; only the commit, the
        duplicate lookup and the tracking row are shared. ``pending`` is what
        ``start_reading`` gave for the same messages; without it they are read here.
        """
        if pending is None:
            pending = self.start_reading(topic, partition, messages)
        readings = dict(zip((m.offset for m in messages), pending.result(), strict=True))
        position = (topic, partition)
        if position not in self._tracked:
            self._tracked[position] = self.ledger.resume_offset(topic, partition)
        try:
            # Optimistic: the record index's unique key rejects a transaction holding a record
            # stored before, so the common case needs no lookup first.
            return self._store(topic, partition, messages, readings, look_up_duplicates=False)
        except BatchConflictError:
            # A record sent before, or another worker (before a rebalance settled) or a retry
            # got there first: reload where the partition stands and look everything up.
            self.forget([position])
            self._tracked[position] = self.ledger.resume_offset(topic, partition)
            return self._store(topic, partition, messages, readings, look_up_duplicates=True)

    def _store(
        self,
        topic: str,
        partition: int,
        messages: Sequence[Message],
        readings: Mapping[int, Reading],
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
        dataset_id = _dataset_of(topic)
        started = time.perf_counter()
        # One consumer span per message, child of the connector's publish span (traceparent).
        spans = [self._message_span(topic, partition, m, dataset_id) for m in fresh_messages]
        try:
            stored = self._validate_and_store(
                topic,
                partition,
                fresh_messages,
                [readings[m.offset] for m in fresh_messages],
                dataset_id,
                spans,
                look_up_duplicates,
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
        readings: Sequence[Reading],
        dataset_id: str,
        spans: Sequence[trace.Span],
        look_up_duplicates: bool,
    ) -> list[tuple[Reading, EncodedRecords, int]]:
        """Every message becomes a batch event; all of them and the position go in one
        transaction. Returns each message's reading, fresh records and duplicate count."""
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
                index_entry(event.originator_id, event.originator_version, fresh.ids)
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

    def _validator_or_none(
        self, topic: str, dataset_id: str
    ) -> tuple[DatasetDefinition | None, RecordValidator | None]:
        cached = self._validators.get(topic)
        if cached is None:
            try:
                definition = self.catalog.get(dataset_id, self.regions)
            except DatasetNotFoundError:
                return None, None
            validator = make_validator(definition, self.regions, self.normaliser)
            cached = self._validators[topic] = (definition, validator)
        return cached

    def _head(self, topic: str, partition: int, dataset_id: str) -> ChainHead:
        head = self._heads.get((topic, partition))
        if head is None:
            head = self.ledger.chain_head(chain_id_for(dataset_id, partition))
        return head

    def _without_duplicates(
        self, accepted: list[EncodedRecords], *, look_up: bool
    ) -> list[tuple[EncodedRecords, int]]:
        """Per message: the records not stored before nor earlier in this group, and how many
        were duplicates. Without ``look_up`` every record counts as fresh: a duplicate then
        breaks the record index's unique key, and the group is stored again with look-up."""
        if not look_up:
            return [(records, 0) for records in accepted]
        ids = [i for records in accepted for i in records.ids]
        seen = self.ledger.existing_record_ids(ids) if ids else set()
        return [records.without(seen) for records in accepted]


def _dataset_of(topic: str) -> str:
    parsed = dataset_of_ingest_topic(topic)
    return parsed[0] if parsed else topic
