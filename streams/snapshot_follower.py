"""The snapshot follower: turns newly stored batches into published snapshots, on a timer.

It follows the event log with its own tracking position, so a restart resumes where the last
published snapshot ended and a range is never published twice.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from types import FrameType

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from storage.catalog import Catalog
from storage.object_store import ObjectStore
from storage.snapshots import SnapshotBuilder, SnapshotLedger

log = logging.getLogger("baylink.streams.snapshots")


def follow(
    event_store_url: str,
    store: ObjectStore,
    interval_seconds: float,
    stop: threading.Event | None = None,
) -> None:
    """Build snapshots every ``interval_seconds`` until ``stop`` is set or SIGTERM arrives."""
    stop = stop or stop_on_signals()
    ledger = SnapshotLedger(event_store_url)
    catalog = Catalog(event_store_url)
    builder = SnapshotBuilder(ledger, catalog, store)
    for dataset in catalog.list():
        published = ledger.publications(dataset.id)
        if published:
            snapshot_ages.note(dataset.id, published[-1].timestamp)
    try:
        while not stop.is_set():
            for manifest in builder.run_once():
                snapshot_ages.note(manifest.dataset_id, datetime.now(UTC))
                log.info(
                    "published snapshot %s of %s: %d rows in %d files (log %d..%d)",
                    manifest.snapshot_id,
                    manifest.dataset_id,
                    manifest.row_count,
                    len(manifest.files),
                    manifest.first_position,
                    manifest.last_position,
                )
            stop.wait(interval_seconds)
    finally:
        ledger.close()
        catalog.close()


class SnapshotAges:
    """When each dataset's newest snapshot was published, as the gauge
    ``baylink.snapshot.age`` (seconds since then)."""

    def __init__(self) -> None:
        self._published: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def note(self, dataset_id: str, published_at: datetime) -> None:
        with self._lock:
            self._published[dataset_id] = published_at

    def forget(self) -> None:
        with self._lock:
            self._published.clear()

    def observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        now = datetime.now(UTC)
        with self._lock:
            published = dict(self._published)
        for dataset_id, at in sorted(published.items()):
            yield Observation(max((now - at).total_seconds(), 0.0), {"dataset": dataset_id})


snapshot_ages = SnapshotAges()
metrics.get_meter("baylink.streams").create_observable_gauge(
    "baylink.snapshot.age",
    callbacks=[snapshot_ages.observe],
    unit="s",
    description="Seconds since the dataset's newest snapshot was published",
)


def stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop
