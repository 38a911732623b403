"""The ingestion application: records batches on their chains, exactly once per position."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Tracking

from domain.dataset import DatasetDefinition
from domain.ingest import ChainHead, IngestChain, chain_id_for
from storage.errors import BatchConflictError
from storage.ledger import LedgerApplication
from storage.recorders import RecordIndexEntry, index_entry


@dataclass(frozen=True, slots=True)
class DatasetTotals:
    """How many records of a dataset were accepted and rejected."""

    accepted: int
    rejected: int


def tracking_name(topic: str, partition: int, broker_epoch: str = "") -> str:
    """A Kafka position's application name in the tracking table.

    A broker that forgets its topics (the embedded one with memory storage) starts offsets
    at 0 again; its epoch, new at each start, keeps old positions from hiding new messages.
    """
    name = f"{topic}:{partition}"
    return f"{name}@{broker_epoch}" if broker_epoch else name


class IngestLedger(LedgerApplication):
    """Use cases of the ingest path, over the shared store."""

    def __init__(self, event_store_url: str, broker_epoch: str = "") -> None:
        super().__init__(event_store_url)
        self.broker_epoch = broker_epoch

    def chain_head(self, chain_id: UUID) -> ChainHead:
        stored = self.recorder.select_events(chain_id, desc=True, limit=1)
        if not stored:
            return ChainHead.genesis(chain_id)
        return ChainHead.after(self._batch(self.mapper.to_domain_event(stored[0])))

    def resume_offset(self, topic: str, partition: int) -> int | None:
        """The last Kafka offset of this partition whose batch is in the store."""
        return self.ledger.max_tracking_id(tracking_name(topic, partition, self.broker_epoch))

    def existing_record_ids(self, record_ids: list[str]) -> set[str]:
        return self.ledger.existing_record_ids(record_ids)

    def record(
        self,
        batch: IngestChain.BatchRecorded,
        *,
        topic: str,
        partition: int,
        offset: int,
        record_ids: list[str],
    ) -> int:
        """Store one batch, its record index rows and the Kafka position in one transaction."""
        index = [index_entry(batch.originator_id, batch.originator_version, record_ids)]
        return self.record_many(
            [batch], topic=topic, partition=partition, offset=offset, record_index=index
        )

    def record_many(
        self,
        batches: Sequence[IngestChain.BatchRecorded],
        *,
        topic: str,
        partition: int,
        offset: int,
        record_index: list[RecordIndexEntry],
    ) -> int:
        """Store consecutive batches of one chain and the last Kafka position in one
        transaction; returns the log position of the last batch."""
        try:
            recordings = self.events.put(
                batches,
                tracking=Tracking(tracking_name(topic, partition, self.broker_epoch), offset),
                record_index=record_index,
            )
        except IntegrityError as error:
            raise BatchConflictError(str(error)) from error
        return recordings[-1].notification.id

    def batches(self, chain_id: UUID, after: int = 0) -> Iterator[IngestChain.BatchRecorded]:
        """The batches of one chain after the given version, oldest first."""
        while True:
            page = self.recorder.select_events(chain_id, gt=after, limit=500)
            if not page:
                return
            for stored in page:
                yield self._batch(self.mapper.to_domain_event(stored))
            after = page[-1].originator_version

    def totals(self, dataset: DatasetDefinition) -> DatasetTotals:
        """Sum of the running totals at the head of each of the dataset's chains."""
        accepted = rejected = 0
        for partition in range(dataset.partitions):
            head = self.chain_head(chain_id_for(dataset.id, partition))
            accepted += head.accepted_total
            rejected += head.rejected_total
        return DatasetTotals(accepted, rejected)

    @staticmethod
    def _batch(event: object) -> IngestChain.BatchRecorded:
        assert isinstance(event, IngestChain.BatchRecorded)
        return event


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What the store made of a set of published messages."""

    accepted: int
    rejected: int
    duplicates: int
    stored_messages: int
    reasons: dict[str, int]


def outcome_of(
    ledger: IngestLedger,
    dataset: DatasetDefinition,
    heads_before: dict[int, int],
    sources: set[str],
) -> IngestOutcome:
    """Totals over the batches that came from ``sources``, read after the given chain versions."""
    accepted = rejected = duplicates = stored = 0
    reasons: dict[str, int] = {}
    for partition in range(dataset.partitions):
        chain = chain_id_for(dataset.id, partition)
        for batch in ledger.batches(chain, after=heads_before.get(partition, 0)):
            if batch.source not in sources:
                continue
            stored += 1
            accepted += batch.record_count
            duplicates += batch.duplicate_count
            for row in batch.rejections:
                rejected += 1
                reasons[str(row[1])] = reasons.get(str(row[1]), 0) + 1
    return IngestOutcome(accepted, rejected, duplicates, stored, reasons)
