"""A partition whose messages cannot be stored shows as stalled in the worker's metrics, for
as long as it is, and no longer once they are stored."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from streams.app import _process_until_stored
from streams.ingest_telemetry import store_retries
from streams.message_reading import Message
from streams.processor import IngestProcessor
from tests.support.telemetry import in_memory_telemetry

GAUGE = "baylink.ingest.store.failed_attempts"


class _FailingStore:
    """Fails the first ``failures`` calls as an unreachable store would; notes the gauge as
    each call begins."""

    def __init__(self, failures: int, reader: InMemoryMetricReader) -> None:
        self.failures = failures
        self.reader = reader
        self.seen: list[dict[tuple[str, int], int]] = []

    def process_many(self, topic: str, partition: int, *_: Any) -> list[object]:
        self.seen.append(_gauge(self.reader))
        if len(self.seen) <= self.failures:
            raise ConnectionError("the event store is unreachable")
        return []


def _gauge(reader: InMemoryMetricReader) -> dict[tuple[str, int], int]:
    data = reader.get_metrics_data()
    points: dict[tuple[str, int], int] = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == GAUGE:
                    for point in metric.data.data_points:
                        assert isinstance(point, NumberDataPoint)
                        attributes = point.attributes or {}
                        key = (str(attributes["topic"]), int(cast(int, attributes["partition"])))
                        points[key] = int(point.value)
    return points


def test_failed_attempts_count_up_while_the_store_fails_and_drop_to_zero_once_stored() -> None:
    _, reader = in_memory_telemetry()
    store_retries.forget()
    store = _FailingStore(failures=2, reader=reader)
    messages = [Message(7, b"x", [])]

    with ThreadPoolExecutor() as threads:
        asyncio.run(
            _process_until_stored(
                cast(IngestProcessor, store), threads, "ingest-topic", 3, messages
            )
        )

    assert store.seen == [{}, {("ingest-topic", 3): 1}, {("ingest-topic", 3): 2}]
    assert _gauge(reader) == {("ingest-topic", 3): 0}


def test_partitions_are_counted_apart_and_forgotten_on_rebalance() -> None:
    store_retries.forget()
    assert store_retries.failed("t", 0) == 1
    assert store_retries.failed("t", 0) == 2
    assert store_retries.failed("t", 1) == 1
    store_retries.stored("t", 1)
    store_retries.stored("t", 2)  # never failed: not reported at all

    assert store_retries.snapshot() == {("t", 0): 2, ("t", 1): 0}
    store_retries.forget()
    assert store_retries.snapshot() == {}
