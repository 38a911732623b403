"""The snapshot follower: turns newly stored batches into published snapshots, on a timer.

It follows the event log with its own tracking position, so a restart resumes where the last
published snapshot ended and a range is never published twice.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

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
    stop = stop or _stop_on_signals()
    ledger = SnapshotLedger(event_store_url)
    catalog = Catalog(event_store_url)
    builder = SnapshotBuilder(ledger, catalog, store)
    try:
        while not stop.is_set():
            for manifest in builder.run_once():
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


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop
