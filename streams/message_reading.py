"""Reading one Kafka message: decode, validate and encode its records, with no I/O.

Pure of the store and the broker, so the worker can run it in other processes (see
streams.reading_pool) while it stores what was read before.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from domain.batch_codec import EncodedRecords
from domain.provenance import Provenance
from domain.record import NormalisedRecord, RecordValidator
from domain.rejection import RejectedRecord, RejectionReason, excerpt_of
from streams import wire
from streams.errors import WireError

log = logging.getLogger("baylink.streams.processor")

HeaderItems = Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None


@dataclass(frozen=True, slots=True)
class Message:
    """The parts of a Kafka message the processor needs."""

    offset: int
    value: bytes | None
    headers: HeaderItems


@dataclass(frozen=True, slots=True)
class Reading:
    """One message, decoded and validated, before duplicates are removed."""

    accepted: EncodedRecords
    rejected: list[RejectedRecord]
    provenance: Provenance


def read_message(
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
            rejected.append(RejectedRecord(-1, RejectionReason.BAD_PAYLOAD, f"{reason}: {text}"))
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
        provenance = provenance_of_unreadable(topic, partition, message.offset, value, headers, now)
    return Reading(EncodedRecords.of(accepted), rejected, provenance)


def provenance_of_unreadable(
    topic: str,
    partition: int,
    offset: int,
    value: bytes | None,
    headers: HeaderItems,
    now: datetime,
) -> Provenance:
    """The message's own provenance if its header is readable, else what the broker says."""
    try:
        return wire.decode_provenance(headers)
    except WireError:
        return Provenance(
            source_uri=f"kafka://{topic}/{partition}/{offset}",
            received_at=now,
            payload_sha256=hashlib.sha256(value or b"").hexdigest(),
            connector="unknown",
            connector_version="unknown",
            region="unknown",
            wire_schema_version=0,
        )
