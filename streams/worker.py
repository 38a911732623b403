"""Running the ingest worker: one Faust worker over every registered dataset's topic.

Faust cannot subscribe to topics added after it starts (its pattern subscription does not
work), so the worker watches the catalog and, when a dataset is added, stops cleanly and
starts again over the new topic list.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust

from domain.region import RegionRegistry
from storage.catalog import Catalog
from storage.ingestion import IngestLedger
from storage.settings import StorageSettings
from streams.app import create_app
from streams.garbage_collection import tune_garbage_collector
from streams.processor import IngestProcessor
from streams.reading_pool import ReadingPool
from streams.settings import StreamsSettings

log = logging.getLogger("baylink.streams.worker")


def _topics(catalog: Catalog) -> list[str]:
    return sorted(d.ingest_topic for d in catalog.list())


def wait_for_datasets(catalog: Catalog, poll_seconds: float) -> list[str]:
    """Block until at least one dataset is registered; a worker with no topic has no work."""
    announced = False
    while True:
        topics = _topics(catalog)
        if topics:
            return topics
        if not announced:
            log.info("no dataset is registered yet; waiting for one")
            announced = True
        time.sleep(poll_seconds)


def run_worker(
    streams: StreamsSettings,
    storage: StorageSettings,
    regions: RegionRegistry,
    pool: ReadingPool | None = None,
) -> bool:
    """Run until signalled (returns False) or until the catalog changes (returns True)."""
    catalog = Catalog(storage.event_store_url)
    ledger = IngestLedger(storage.event_store_url, streams.broker_epoch)
    topics = wait_for_datasets(catalog, streams.catalog_poll_seconds)
    processor = IngestProcessor(ledger, catalog, regions, pool=pool)
    store_threads = ThreadPoolExecutor(thread_name_prefix="baylink-store")
    app = create_app(streams, topics, processor, store_threads)
    catalog_changed = False

    @app.timer(interval=streams.catalog_poll_seconds)  # type: ignore[untyped-decorator]
    async def watch_catalog() -> None:
        nonlocal catalog_changed
        current = await asyncio.get_running_loop().run_in_executor(store_threads, _topics, catalog)
        if current != topics and not catalog_changed:
            log.info("catalog changed (%d topics now); restarting the consumer", len(current))
            catalog_changed = True
            os.kill(os.getpid(), signal.SIGTERM)

    log.info("ingest worker consuming %d topics from %s", len(topics), streams.bootstrap_servers)
    tune_garbage_collector()
    worker = faust.Worker(app, loglevel="WARNING", quiet=True, override_logging=False)
    try:
        worker.execute_from_commandline()
    except SystemExit:
        pass
    finally:
        # Faust cancels the agent, not a store call under way in its thread: closing the
        # store beneath a running SQLite query crashes the process.
        store_threads.shutdown(wait=True)
        ledger.close()
        catalog.close()
    return catalog_changed


def run_forever(streams: StreamsSettings, storage: StorageSettings, **_: Any) -> None:
    """The worker command: restart the consumer whenever the catalog gains a dataset (the
    reader processes stay)."""
    regions = RegionRegistry.default()
    pool = ReadingPool(streams.reader_processes, regions) if streams.reader_processes else None
    try:
        if pool is not None:
            pool.warm_up()
            log.info("%d reader processes", pool.processes)
        while run_worker(streams, storage, regions, pool):
            asyncio.set_event_loop(asyncio.new_event_loop())
    finally:
        if pool is not None:
            pool.close()
