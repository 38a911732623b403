"""Ingest chains: every accepted or rejected record is stored in a batch event, and each batch
carries the hash of the batch before it, one chain per dataset partition so workers never
contend for a chain head.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec
from eventsourcing.domain import DomainEvent

from domain.batch_codec import EncodedRecords, count_records, decode_records, digest, encode_records
from domain.canonical_json import canonical_json
from domain.errors import ChainIntegrityError
from domain.provenance import Provenance
from domain.record import NormalisedRecord
from domain.rejection import RejectedRecord

GENESIS_HASH = "0" * 64
# Bumped whenever what the batch hash covers changes, so old chains stay verifiable.
HASH_FORMAT = 1
_CHAIN_NAMESPACE = uuid5(NAMESPACE_URL, "urn:baylink:ingest-chain")


@lru_cache(maxsize=4096)  # verifying a log asks for every batch's chain id
def chain_id_for(dataset_id: str, partition: int) -> UUID:
    """Each (dataset, partition) pair has one chain with a stable id."""
    return uuid5(_CHAIN_NAMESPACE, f"{dataset_id}/{partition}")


class IngestChain:
    """Namespace of the events recorded on an ingest chain."""

    @dataclass(frozen=True)
    class BatchRecorded(DomainEvent):
        """One consumed message's worth of records: accepted ones encoded, rejections listed."""

        dataset_id: str
        partition: int
        source: str
        provenance: dict[str, Any]
        records: bytes
        record_count: int
        rejections: list[list[Any]]
        duplicate_count: int
        accepted_total: int
        rejected_total: int
        records_digest: str
        previous_hash: str
        hash: str

        def accepted(self) -> list[NormalisedRecord]:
            return decode_records(self.records)

        def rejected(self) -> list[RejectedRecord]:
            return [RejectedRecord.from_row(row) for row in self.rejections]


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Where a chain stands: the last version, its hash and running totals."""

    chain_id: UUID
    version: int
    hash: str
    accepted_total: int
    rejected_total: int

    @classmethod
    def genesis(cls, chain_id: UUID) -> ChainHead:
        return cls(chain_id, 0, GENESIS_HASH, 0, 0)

    @classmethod
    def after(cls, event: IngestChain.BatchRecorded) -> ChainHead:
        return cls(
            event.originator_id,
            event.originator_version,
            event.hash,
            event.accepted_total,
            event.rejected_total,
        )


def batch_hash(
    *,
    previous_hash: str,
    chain_id: UUID,
    version: int,
    recorded_at: datetime,
    dataset_id: str,
    partition: int,
    source: str,
    provenance: dict[str, Any],
    records_digest: str,
    rejections: Sequence[Sequence[Any]],
    duplicate_count: int,
    accepted_total: int,
    rejected_total: int,
) -> str:
    """The hash that links a batch to its predecessor; covers everything the batch says."""
    return hashlib.sha256(
        canonical_json(
            [
                HASH_FORMAT,
                previous_hash,
                chain_id.hex,
                version,
                utc_text(recorded_at),
                dataset_id,
                partition,
                source,
                provenance,
                records_digest,
                rejections,
                duplicate_count,
                accepted_total,
                rejected_total,
            ]
        )
    ).hexdigest()


def utc_text(moment: datetime) -> str:
    """``moment`` in UTC as ``datetime.isoformat`` writes it, as batch hashes take it."""
    if moment.tzinfo is not UTC:
        return moment.astimezone(UTC).isoformat()
    # Stored times come back in UTC already. msgspec writes the same digits as isoformat,
    # ending in "Z", in a fifth of the time, which a verifying pass over a whole log needs.
    return _time_encoder.encode(moment)[1:-2].decode() + "+00:00"


_time_encoder = msgspec.json.Encoder()


def next_batch(
    head: ChainHead,
    *,
    dataset_id: str,
    partition: int,
    source: str,
    provenance: Provenance,
    accepted: list[NormalisedRecord] | EncodedRecords,
    rejected: Sequence[RejectedRecord],
    duplicate_count: int = 0,
) -> IngestChain.BatchRecorded:
    """The batch event that follows ``head``, with its digest and chain hash computed."""
    payload = accepted.payload if isinstance(accepted, EncodedRecords) else encode_records(accepted)
    records_digest = digest(payload)
    rejections = [r.as_row() for r in rejected]
    provenance_dict = provenance.as_dict()
    version = head.version + 1
    recorded_at = IngestChain.BatchRecorded.create_timestamp()
    accepted_total = head.accepted_total + len(accepted)
    rejected_total = head.rejected_total + len(rejections)
    return IngestChain.BatchRecorded(
        originator_id=head.chain_id,
        originator_version=version,
        timestamp=recorded_at,
        dataset_id=dataset_id,
        partition=partition,
        source=source,
        provenance=provenance_dict,
        records=payload,
        record_count=len(accepted),
        rejections=rejections,
        duplicate_count=duplicate_count,
        accepted_total=accepted_total,
        rejected_total=rejected_total,
        records_digest=records_digest,
        previous_hash=head.hash,
        hash=batch_hash(
            previous_hash=head.hash,
            chain_id=head.chain_id,
            version=version,
            recorded_at=recorded_at,
            dataset_id=dataset_id,
            partition=partition,
            source=source,
            provenance=provenance_dict,
            records_digest=records_digest,
            rejections=rejections,
            duplicate_count=duplicate_count,
            accepted_total=accepted_total,
            rejected_total=rejected_total,
        ),
    )


class BatchContent(Protocol):
    """What a batch says besides its place (chain id and version): a ``BatchRecorded`` event,
    or its stored state decoded without building the event, as a verifying pass reads it."""

    @property
    def timestamp(self) -> datetime: ...
    @property
    def dataset_id(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def source(self) -> str: ...
    @property
    def provenance(self) -> dict[str, Any]: ...
    @property
    def records(self) -> bytes: ...
    @property
    def record_count(self) -> int: ...
    @property
    def rejections(self) -> list[list[Any]]: ...
    @property
    def duplicate_count(self) -> int: ...
    @property
    def accepted_total(self) -> int: ...
    @property
    def rejected_total(self) -> int: ...
    @property
    def records_digest(self) -> str: ...
    @property
    def previous_hash(self) -> str: ...
    @property
    def hash(self) -> str: ...


def hash_of(event: IngestChain.BatchRecorded) -> str:
    """Recompute a stored batch's hash from what it says."""
    return _hash_of(event.originator_id, event.originator_version, event)


def _hash_of(chain_id: UUID, version: int, batch: BatchContent) -> str:
    return batch_hash(
        previous_hash=batch.previous_hash,
        chain_id=chain_id,
        version=version,
        recorded_at=batch.timestamp,
        dataset_id=batch.dataset_id,
        partition=batch.partition,
        source=batch.source,
        provenance=batch.provenance,
        records_digest=batch.records_digest,
        rejections=batch.rejections,
        duplicate_count=batch.duplicate_count,
        accepted_total=batch.accepted_total,
        rejected_total=batch.rejected_total,
    )


@dataclass(frozen=True, slots=True)
class ChainFault:
    """What is wrong with one batch of a chain: a stable reason code and a sentence."""

    reason: str
    message: str


class BatchFacts(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """What one batch says of its place in its chain, and what checking the batch on its own
    found: enough to link it to the batch before it without the batch itself, so a verifying
    pass can examine batches in other processes and link them in order.

    A struct the collector does not track (it holds no container that could close a cycle):
    a pass keeps a chain's facts since the last snapshot, and builds one per batch."""

    chain_key: bytes  # the chain id's 16 bytes
    version: int
    previous_hash: str
    hash: str
    dataset_id: str
    partition: int
    record_count: int
    rejection_count: int
    accepted_total: int
    rejected_total: int
    chain_id_fault: ChainFault | None
    content_fault: ChainFault | None


def batch_facts(event: IngestChain.BatchRecorded) -> BatchFacts:
    """Check what a batch can show on its own: its chain id, hash, digest and record count."""
    return stored_batch_facts(event.originator_id, event.originator_version, event)


def stored_batch_facts(chain_id: UUID, version: int, batch: BatchContent) -> BatchFacts:
    """``batch_facts`` of the batch at ``version`` of chain ``chain_id`` that says ``batch``."""

    def fault(reason: str, what: str) -> ChainFault:
        return ChainFault(reason, f"{_where(chain_id, version)}: {what}")

    chain_id_fault = None
    if chain_id != chain_id_for(batch.dataset_id, batch.partition):
        chain_id_fault = fault("chain_id", "chain id does not match dataset and partition")
    content_fault = None
    if _hash_of(chain_id, version, batch) != batch.hash:
        content_fault = fault("batch_hash", "batch hash does not match its contents")
    elif digest(batch.records) != batch.records_digest:
        content_fault = fault("records_digest", "records do not match their digest")
    else:
        try:
            if count_records(batch.records) != batch.record_count:
                content_fault = fault("record_count", "record count does not match the records")
        except ValueError as error:  # msgspec.DecodeError is a ValueError
            content_fault = fault("records_undecodable", f"records cannot be decoded: {error}")
    return BatchFacts(
        chain_id.bytes,
        version,
        batch.previous_hash,
        batch.hash,
        batch.dataset_id,
        batch.partition,
        batch.record_count,
        len(batch.rejections),
        batch.accepted_total,
        batch.rejected_total,
        chain_id_fault,
        content_fault,
    )


def link_fault(previous: ChainHead | BatchFacts, facts: BatchFacts) -> ChainFault | None:
    """The first thing wrong with a batch, from its facts, as the batch after ``previous``
    (a chain head, or the facts of the batch before, which say as much)."""

    if facts.version != previous.version + 1:
        return _link_fault(facts, "chain_version", f"expected version {previous.version + 1}")
    if facts.chain_id_fault is not None:
        return facts.chain_id_fault
    if facts.previous_hash != previous.hash:
        return _link_fault(facts, "chain_link", "previous hash does not match the chain")
    if facts.content_fault is not None:
        return facts.content_fault
    if facts.accepted_total != previous.accepted_total + facts.record_count:
        return _link_fault(facts, "accepted_total", "accepted total does not add up")
    if facts.rejected_total != previous.rejected_total + facts.rejection_count:
        return _link_fault(facts, "rejected_total", "rejected total does not add up")
    return None


def _link_fault(facts: BatchFacts, reason: str, what: str) -> ChainFault:
    return ChainFault(reason, f"{_where(UUID(bytes=facts.chain_key), facts.version)}: {what}")


def batch_fault(previous: ChainHead, event: IngestChain.BatchRecorded) -> ChainFault | None:
    """The first thing wrong with ``event`` as the batch after ``previous``, else None."""
    return link_fault(previous, batch_facts(event))


def _where(chain_id: UUID, version: int) -> str:
    return f"chain {chain_id} version {version}"


def verify_chain(events: Iterable[IngestChain.BatchRecorded]) -> ChainHead | None:
    """Recompute every digest and link of one chain, in version order; raise on the first break."""
    head: ChainHead | None = None
    for event in events:
        fault = batch_fault(head or ChainHead.genesis(event.originator_id), event)
        if fault is not None:
            raise ChainIntegrityError(fault.message)
        head = ChainHead.after(event)
    return head
