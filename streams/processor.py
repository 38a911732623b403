"""What the ingest agent does with one Kafka message, as a plain, separately tested object.

The event store is the exactly-once boundary: each message position is tracked in the same
transaction as the batch it produced, so a redelivered message is recognised and skipped,
and a record sent twice (same dataset and key) is stored once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from domain.dataset import DatasetDefinition
from domain.errors import DatasetNotFoundError
from domain.geo import CoordinateNormaliser, Wgs84Only
from domain.ingest import ChainHead, chain_id_for, next_batch
from domain.provenance import Provenance
from domain.record import NormalisedRecord, RecordValidator
from domain.region import RegionRegistry
from domain.rejection import RejectedRecord, RejectionReason, excerpt_of
from storage.catalog import Catalog
from storage.errors import BatchConflictError
from storage.ingestion import IngestLedger
from streams import faults, wire
from streams.errors import WireError
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
        self.normaliser = normaliser or Wgs84Only()
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
        position = (topic, partition)
        if position not in self._tracked:
            self._tracked[position] = self.ledger.resume_offset(topic, partition)
        tracked = self._tracked[position]
        if tracked is not None and offset <= tracked:
            return SKIPPED
        try:
            return self._store(topic, partition, offset, value, headers)
        except BatchConflictError:
            # Another worker (before a rebalance settled) or a retry got there first.
            self.forget([position])
            tracked = self._tracked[position] = self.ledger.resume_offset(topic, partition)
            if tracked is not None and offset <= tracked:
                return SKIPPED
            return self._store(topic, partition, offset, value, headers)

    def _store(
        self, topic: str, partition: int, offset: int, value: bytes | None, headers: HeaderItems
    ) -> Outcome:
        now = self.clock()
        parsed = dataset_of_ingest_topic(topic)
        dataset_id = parsed[0] if parsed else topic
        accepted: list[NormalisedRecord] = []
        rejected: list[RejectedRecord] = []
        provenance: Provenance | None = None
        # Looked up outside the catch-all below: a store outage must be retried, not rejected.
        validator = self._validator_or_none(topic, dataset_id)
        try:
            if validator is None:
                raise WireError(
                    RejectionReason.UNKNOWN_DATASET, f"no dataset {dataset_id!r} is registered"
                )
            batch = wire.decode(value, headers, dataset_id)
            provenance = batch.provenance
            if batch.payload_rejection is not None:
                reason, message = batch.payload_rejection
                rejected.append(
                    RejectedRecord(-1, RejectionReason.BAD_PAYLOAD, f"{reason}: {message}")
                )
            else:
                result = validator.validate(batch.rows, provenance.region, now)
                accepted, rejected = result.accepted, result.rejected
        except WireError as error:
            rejected = [RejectedRecord(-1, error.reason, error.message, None, excerpt_of(value))]
        except Exception as error:  # a poison message must never stall its partition
            log.exception("unexpected failure reading %s[%s]@%s", topic, partition, offset)
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
            provenance = self._provenance_of_unreadable(topic, partition, offset, value, headers)
        fresh, duplicates = self._without_duplicates(accepted)
        head = self._head(topic, partition, dataset_id)
        event = next_batch(
            head,
            dataset_id=dataset_id,
            partition=partition,
            source=f"{topic}:{partition}@{offset}",
            provenance=provenance,
            accepted=fresh,
            rejected=rejected,
            duplicate_count=duplicates,
        )
        faults.reached(faults.BEFORE_STORE_COMMIT)
        notification_id = self.ledger.record(
            event,
            topic=topic,
            partition=partition,
            offset=offset,
            record_ids=[str(r[0]) for r in fresh],
        )
        self._heads[(topic, partition)] = ChainHead.after(event)
        self._tracked[(topic, partition)] = offset
        return Outcome(True, len(fresh), len(rejected), duplicates, notification_id)

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
        return RecordValidator(definition, self.regions, self.normaliser)

    def _head(self, topic: str, partition: int, dataset_id: str) -> ChainHead:
        head = self._heads.get((topic, partition))
        if head is None:
            head = self.ledger.chain_head(chain_id_for(dataset_id, partition))
        return head

    def _without_duplicates(
        self, accepted: list[NormalisedRecord]
    ) -> tuple[list[NormalisedRecord], int]:
        if not accepted:
            return accepted, 0
        ids = [str(r[0]) for r in accepted]
        seen = self.ledger.existing_record_ids(ids)
        fresh: list[NormalisedRecord] = []
        for record_id, record in zip(ids, accepted, strict=True):
            if record_id not in seen:
                seen.add(record_id)
                fresh.append(record)
        return fresh, len(accepted) - len(fresh)

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
