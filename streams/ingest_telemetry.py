"""What the ingest path tells operators: its spans and its instruments (OpenTelemetry API only;
the worker's entry point decides where they go)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Self

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation

from domain.batch_codec import EncodedRecords
from domain.rejection import RejectedRecord

tracer = trace.get_tracer("baylink.streams")
_meter = metrics.get_meter("baylink.streams")

records_accepted = _meter.create_counter(
    "baylink.records.accepted", unit="{record}", description="Records accepted into the store"
)
records_rejected = _meter.create_counter(
    "baylink.records.rejected", unit="{record}", description="Records rejected, with reason"
)
records_duplicate = _meter.create_counter(
    "baylink.records.duplicate",
    unit="{record}",
    description="Records already in the store, received again and not stored twice",
)
# Seconds, so the SDK's default buckets (meant for milliseconds) would put everything in one.
_BATCH_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_DELAY_SECONDS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
batch_duration = _meter.create_histogram(
    "baylink.ingest.batch.duration",
    unit="s",
    description="Time to validate and store one transaction's messages",
    explicit_bucket_boundaries_advisory=_BATCH_SECONDS,
)
ingest_delay = _meter.create_histogram(
    "baylink.ingest.delay",
    unit="s",
    description="From the connector receiving a payload to its records being in the store",
    explicit_bucket_boundaries_advisory=_DELAY_SECONDS,
)


class PartitionGauge:
    """A number per assigned partition, observed as a gauge labelled by topic and partition."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Partitions were revoked: this worker no longer speaks for them."""
        with self._lock:
            self._values.clear()

    def snapshot(self) -> dict[tuple[str, int], int]:
        with self._lock:
            return dict(self._values)

    def observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        for (topic, partition), value in sorted(self.snapshot().items()):
            yield Observation(value, {"topic": topic, "partition": partition})

    def registered(self, name: str, unit: str, description: str) -> Self:
        _meter.create_observable_gauge(
            name, callbacks=[self.observe], unit=unit, description=description
        )
        return self


class ConsumerLag(PartitionGauge):
    """Messages each assigned partition still has to store, as the worker last saw them."""

    def update(self, topic: str, partition: int, lag: int) -> None:
        with self._lock:
            self._values[(topic, partition)] = max(lag, 0)


consumer_lag = ConsumerLag().registered(
    "baylink.consumer.lag", "{message}", "Messages of a partition not yet stored by its worker"
)


class StoreRetries(PartitionGauge):
    """Attempts in a row that failed to store each partition's messages. The worker retries a
    store it cannot reach for ever, by design, so above 0 the partition is stalled; this is
    what shows it on a dashboard rather than only in the log."""

    def failed(self, topic: str, partition: int) -> int:
        """One more failed attempt; returns how many in a row."""
        with self._lock:
            key = (topic, partition)
            count = self._values[key] = self._values.get(key, 0) + 1
            return count

    def stored(self, topic: str, partition: int) -> None:
        with self._lock:
            if (topic, partition) in self._values:
                self._values[(topic, partition)] = 0


store_retries = StoreRetries().registered(
    "baylink.ingest.store.failed_attempts",
    "{attempt}",
    "Failed attempts in a row to store a partition's messages (0 once stored)",
)


def count_outcome(
    dataset_id: str,
    source_region: str,
    accepted: EncodedRecords,
    rejected: Sequence[RejectedRecord],
    duplicates: int,
) -> None:
    """Adds one message's outcome to the counters (accepted by the region of each record)."""
    for region, count in accepted.regions.items():
        records_accepted.add(count, {"dataset": dataset_id, "region": region})
    for reason, count in Counter(str(r.reason) for r in rejected).items():
        records_rejected.add(
            count, {"dataset": dataset_id, "region": source_region, "reason": reason}
        )
    if duplicates:
        records_duplicate.add(duplicates, {"dataset": dataset_id})
