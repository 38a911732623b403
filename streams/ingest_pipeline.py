"""One fetched payload to a dataset's ingest topic: provenance, parse, publish.

`baylink ingest` and the connector runner both hand their payloads here, so a file read once
and a feed polled every minute are parsed, described and published the same way. The caller
owns the producer (one per process) and the span around the whole ingest; this module opens
the "connector parse" and "publish <topic>" spans inside it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from opentelemetry import trace

from connectors.errors import PayloadError
from connectors.formats import Format, ParseOptions
from connectors.payload import ParsedPayload
from connectors.source import FetchedPayload
from domain.dataset import DatasetDefinition
from domain.provenance import Provenance
from observability.propagation import (
    current_traceparent,
    span_id_of_current_span,
    trace_id_of_current_span,
)
from streams import wire
from streams.publisher import PublishReport, publish_payload_rejection, publish_rows

tracer = trace.get_tracer("baylink.connectors")

# Payloads at least this large are parsed in a worker thread, so that a connector runner's
# other sources (and the producer's own I/O) are not held up while a big file is read.
_THREAD_PARSE_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class IngestTarget:
    """Where a source's payloads go and how they are read."""

    definition: DatasetDefinition
    fmt: Format
    options: ParseOptions
    region: str | None = None


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What was published for one payload; ``parse_error`` when it was recorded as rejected."""

    report: PublishReport
    parsed: ParsedPayload
    parse_error: PayloadError | None
    provenance: Provenance


def provenance_of(fetched: FetchedPayload, target: IngestTarget) -> Provenance:
    """The payload's provenance, tied to the current span's trace."""
    return Provenance(
        source_uri=fetched.uri,
        received_at=fetched.received_at,
        payload_sha256=hashlib.sha256(fetched.data).hexdigest(),
        connector=target.fmt.connector,
        connector_version=target.fmt.version,
        region=target.region or target.definition.owner_region,
        wire_schema_version=wire.WIRE_SCHEMA_VERSION,
        trace_id=trace_id_of_current_span(),
        span_id=span_id_of_current_span(),
    )


async def parse(
    fetched: FetchedPayload, target: IngestTarget
) -> tuple[ParsedPayload, PayloadError | None]:
    """The payload's rows, or no rows and the error that made the whole payload unreadable."""
    with tracer.start_as_current_span(
        "connector parse", attributes={"baylink.payload.bytes": len(fetched.data)}
    ) as span:
        try:
            if len(fetched.data) >= _THREAD_PARSE_BYTES:
                parsed = await asyncio.to_thread(
                    target.fmt.parse, fetched.data, target.definition, target.options
                )
            else:
                parsed = target.fmt.parse(fetched.data, target.definition, target.options)
        except PayloadError as error:
            span.set_attribute("baylink.rejection.reason", error.reason)
            return ParsedPayload(rows=[], format=target.fmt.connector), error
        span.set_attribute("baylink.rows", len(parsed.rows))
        return parsed, None


async def publish(
    producer: AIOKafkaProducer,
    fetched: FetchedPayload,
    target: IngestTarget,
    provenance: Provenance,
    parsed: ParsedPayload,
    parse_error: PayloadError | None,
    *,
    batch_size: int,
    on_progress: Callable[[int], None] | None = None,
) -> PublishReport:
    """Publish the rows, or the payload's rejection; returns once the broker acknowledged all."""
    topic = target.definition.ingest_topic
    with tracer.start_as_current_span(
        f"publish {topic}",
        kind=trace.SpanKind.PRODUCER,
        attributes={"messaging.system": "kafka", "messaging.destination.name": topic},
    ):
        traceparent = current_traceparent()
        if parse_error is not None:
            return await publish_payload_rejection(
                producer,
                target.definition,
                provenance,
                reason=parse_error.reason,
                message=parse_error.message,
                size=len(fetched.data),
                traceparent=traceparent,
            )
        return await publish_rows(
            producer,
            target.definition,
            parsed.rows,
            provenance,
            batch_size=batch_size,
            traceparent=traceparent,
            on_progress=on_progress,
        )


async def ingest_payload(
    producer: AIOKafkaProducer,
    fetched: FetchedPayload,
    target: IngestTarget,
    *,
    batch_size: int,
    on_progress: Callable[[int], None] | None = None,
) -> IngestResult:
    """Describe, parse and publish one payload (an unreadable one is published as rejected)."""
    provenance = provenance_of(fetched, target)
    parsed, parse_error = await parse(fetched, target)
    report = await publish(
        producer,
        fetched,
        target,
        provenance,
        parsed,
        parse_error,
        batch_size=batch_size,
        on_progress=on_progress,
    )
    return IngestResult(report, parsed, parse_error, provenance)


async def publish_refused(
    producer: AIOKafkaProducer, fetched: FetchedPayload, target: IngestTarget, error: PayloadError
) -> IngestResult:
    """Record a payload refused before parsing (e.g. too large) as a rejected payload."""
    provenance = provenance_of(fetched, target)
    parsed = ParsedPayload(rows=[], format=target.fmt.connector)
    report = await publish(producer, fetched, target, provenance, parsed, error, batch_size=1)
    return IngestResult(report, parsed, error, provenance)
