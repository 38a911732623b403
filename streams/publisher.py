"""Publishing a connector's rows to a dataset's ingest topic, in batches, with provenance.

Rows are spread over partitions by a stable hash of their key fields, so the same observation
always lands on the same partition (and so the same chain and worker) however often it is sent.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiokafka import AIOKafkaProducer

from domain.dataset import DatasetDefinition
from domain.provenance import Provenance
from streams import wire

Row = Mapping[str, Any]


@dataclass
class PublishReport:
    """Where each published message landed, so a caller can wait for exactly those."""

    topic: str
    rows: int = 0
    positions: list[tuple[int, int]] = field(default_factory=list)

    @property
    def messages(self) -> int:
        return len(self.positions)

    def last_offsets(self) -> dict[int, int]:
        last: dict[int, int] = {}
        for partition, offset in self.positions:
            last[partition] = max(offset, last.get(partition, -1))
        return last


_key_encoder = msgspec.msgpack.Encoder()


def partition_of(row: Row, dataset: DatasetDefinition) -> int:
    """The key fields' values as msgpack, hashed: the same observation always gives the same
    bytes (a time is its UTC instant, whatever zone it was written in)."""
    values = [row.get(name) for name in dataset.key_fields]
    try:
        key = _key_encoder.encode(values)
    except (TypeError, OverflowError, msgspec.EncodeError):
        # Not a wire value, so the batch will be refused anyway; any stable partition will do.
        key = "\x1f".join(map(repr, values)).encode()
    return zlib.crc32(key) % dataset.partitions


def make_producer(bootstrap_servers: str) -> AIOKafkaProducer:
    """A producer without idempotence or transactions: at-least-once, the store dedupes."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        enable_idempotence=False,
        acks="all",
        linger_ms=5,
        max_request_size=wire.MAX_MESSAGE_BYTES + 1024 * 1024,
        request_timeout_ms=30_000,
    )


async def publish_rows(
    producer: AIOKafkaProducer,
    dataset: DatasetDefinition,
    rows: Sequence[Row],
    provenance: Provenance,
    *,
    traceparent: str | None = None,
    batch_size: int = 1000,
    on_progress: Callable[[int], None] | None = None,
) -> PublishReport:
    report = PublishReport(dataset.ingest_topic)
    by_partition: dict[int, list[Row]] = {}
    for row in rows:
        by_partition.setdefault(partition_of(row, dataset), []).append(row)
    headers = wire.headers_for(wire.KIND_RECORDS, dataset.id, provenance, traceparent)
    pending = []
    for partition in sorted(by_partition):
        part_rows = by_partition[partition]
        for start in range(0, len(part_rows), batch_size):
            chunk = part_rows[start : start + batch_size]
            future = await producer.send(
                report.topic,
                value=wire.encode_rows(chunk),
                partition=partition,
                headers=headers,
            )
            pending.append((future, len(chunk)))
    for future, count in pending:
        metadata = await future
        report.positions.append((metadata.partition, metadata.offset))
        report.rows += count
        if on_progress is not None:
            on_progress(count)
    return report


async def publish_payload_rejection(
    producer: AIOKafkaProducer,
    dataset: DatasetDefinition,
    provenance: Provenance,
    *,
    reason: str,
    message: str,
    size: int,
    traceparent: str | None = None,
) -> PublishReport:
    """A payload the connector could not read is still recorded, as a dead letter with reason."""
    report = PublishReport(dataset.ingest_topic)
    metadata = await producer.send_and_wait(
        report.topic,
        value=wire.encode_payload_rejection(reason, message, size),
        partition=zlib.crc32(provenance.payload_sha256.encode()) % dataset.partitions,
        headers=wire.headers_for(wire.KIND_REJECTED_PAYLOAD, dataset.id, provenance, traceparent),
    )
    report.positions.append((metadata.partition, metadata.offset))
    return report
