"""Offline verification throughput: `baylink audit verify`'s pass over a store (chains, signed
tree heads, snapshots) against reading the same notification log raw, in the same run.

    python benchmarks/audit.py [--events N] [--rows-per-batch K] [--rounds R]
                               [--event-store URL] [--workers W] [--json]

What it does:

1. builds a store through the real ingest path (``IngestProcessor`` over the sensor-readings
   dataset, four partitions, runs of 8 messages as the worker stores them): N ingest messages
   of K rows each, a signed tree head every 1,000 events and a snapshot every 10,000, in a
   SQLite file in a temporary directory unless ``--event-store`` names an empty store. It
   builds in a process of its own: the passes then run in one that, like `baylink audit
   verify`, holds nothing but what they read. Run in the process that built the store, a pass
   costs about half as much CPU again (its examining workers fork a large heap, and the
   collector scans it);
2. R rounds, each three passes back to back:
   - baseline: every notification read in pages of 1,000 with the eventsourcing recorder's
     ``select_notifications``, as the verifier reads them, touching each state's bytes and
     nothing else, in one process: events/s;
   - verify: a full ``LogVerifier`` pass (it must pass) as `baylink audit verify` makes it,
     with W examining worker processes (default: as the command's), starting them included;
   - the same pass in one process;
3. reports the medians, the ratio (verify with workers / raw), the one-process pass's peak
   Python allocations (one extra pass under tracemalloc) and the process's peak RSS.

Progress goes to stderr; ``--json`` prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Run as a file (python benchmarks/audit.py), the project root is not on the path yet.
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.dataset import DatasetDefinition
from domain.provenance import Provenance
from storage.catalog import Catalog
from storage.examining_pool import ExaminingPool, default_workers
from storage.ingestion import IngestLedger
from storage.log_verifier import AuditLedger, LogVerifier
from storage.object_store import ObjectStore
from storage.object_store_factory import open_object_store
from storage.snapshots import SnapshotBuilder, SnapshotLedger
from storage.tree_heads import TreeHeadLedger, TreeHeadRecorder
from streams import wire
from streams.message_reading import Message
from streams.processor import IngestProcessor

DATASET = Path(__file__).with_name("sensor-readings.yaml")
NODE_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"audit benchmark").digest())
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
PARTITIONS = 4
RUN = 8
REGIONS = ("hk", "gd-shenzhen", "mo")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def rows(count: int, start: int) -> list[dict[str, Any]]:
    return [
        {
            "sensor_id": f"s{(start + i) % 997}",
            # Back in time: the validator refuses readings from more than 5 minutes ahead.
            "observed_at": NOW - timedelta(seconds=start + i),
            "lat": 22.2 + (i % 100) / 1000,
            "lon": 113.9 + (i % 50) / 1000,
            "speed": float(i % 120),
            "volume": i % 40,
            "lane_closed": i % 7 == 0,
            "region": REGIONS[(start + i) % len(REGIONS)],
        }
        for i in range(count)
    ]


def build(
    url: str,
    objects: ObjectStore,
    messages: int,
    rows_per_batch: int,
    head_every: int = 1000,
    snapshot_every: int = 10_000,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """A store as a platform leaves it (see the module's description); the tampering tests
    build theirs with this too."""
    catalog, ingest = Catalog(url), IngestLedger(url)
    snapshots, heads = SnapshotLedger(url), TreeHeadLedger(url)
    try:
        dataset = DatasetDefinition.from_dict(yaml.safe_load(DATASET.read_text()))
        catalog.register(dataset)
        processor = IngestProcessor(ingest, catalog, clock=lambda: NOW)
        recorder = TreeHeadRecorder(heads, NODE_KEY, every_events=head_every, every_seconds=3600.0)
        builder = SnapshotBuilder(snapshots, catalog, objects)
        provenance = Provenance(
            "file:///readings.csv", NOW, "d" * 64, "tabular", "1", "gd-shenzhen", 1
        )
        headers = wire.headers_for(wire.KIND_RECORDS, dataset.id, provenance, None)
        offsets = [0] * PARTITIONS
        stored = 0
        while stored < messages:
            partition = (stored // RUN) % PARTITIONS
            run = [
                Message(
                    offsets[partition] + i,
                    wire.encode_rows(rows(rows_per_batch, (stored + i) * rows_per_batch)),
                    headers,
                )
                for i in range(min(RUN, messages - stored))
            ]
            processor.process_many(dataset.ingest_topic, partition, run)
            offsets[partition] += len(run)
            before = stored
            stored += len(run)
            recorder.run_once()
            if stored // snapshot_every != before // snapshot_every:
                builder.run_once()
            if on_progress is not None and stored // 5_000 != before // 5_000:
                on_progress(stored)
        builder.run_once()
        recorder.run_once()
        totals = ingest.totals(dataset)
        if (totals.accepted, totals.rejected) != (messages * rows_per_batch, 0):
            raise RuntimeError(f"the built store accepted {totals}, not every row")
    finally:
        for application in (catalog, ingest, snapshots, heads):
            application.close()


def build_apart(url: str, objects_url: str, messages: int, rows_per_batch: int) -> None:
    """``build`` in a fresh interpreter (see the module's description)."""
    child = multiprocessing.get_context("spawn").Process(
        target=_build_in_child, args=(url, objects_url, messages, rows_per_batch)
    )
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"audit benchmark: building the store failed (exit {child.exitcode})")


def _build_in_child(url: str, objects_url: str, messages: int, rows_per_batch: int) -> None:
    build(
        url,
        open_object_store(objects_url),
        messages,
        rows_per_batch,
        on_progress=lambda stored: say(f"  built {stored:,} of {messages:,} messages"),
    )


def raw_pass(ledger: AuditLedger) -> tuple[int, float]:
    began = time.perf_counter()
    events, size, start = 0, 0, 1
    while page := ledger.recorder.select_notifications(start, 1000):
        for notification in page:
            size += len(notification.state)
        events += len(page)
        start = page[-1].id + 1
    return events, time.perf_counter() - began


def verify_pass(ledger: AuditLedger, objects: ObjectStore, workers: int) -> tuple[int, float]:
    """A pass as `baylink audit verify --workers N` makes it, starting its workers included."""
    began = time.perf_counter()
    pool = ExaminingPool(ledger.event_store_url, workers) if workers else None
    try:
        report = LogVerifier(ledger, objects, NODE_KEY.public_key(), pool=pool).run()
    finally:
        if pool is not None:
            pool.close()
    elapsed = time.perf_counter() - began
    if report.failure is not None:
        raise SystemExit(f"audit benchmark: the untampered store failed: {report.failure}")
    return report.events, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="ingest messages to store")
    parser.add_argument("--rows-per-batch", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--event-store", default=None)
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="examining processes, as audit verify --workers (default: its default)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.event_store or f"sqlite:///{Path(tmp) / 'events.sqlite'}"
        objects_url = f"file://{Path(tmp) / 'objects'}"
        say(f"building {args.events:,} ingest messages of {args.rows_per_batch} rows ...")
        began = time.perf_counter()
        build_apart(url, objects_url, args.events, args.rows_per_batch)
        objects = open_object_store(objects_url)
        build_seconds = time.perf_counter() - began
        ledger = AuditLedger(url)
        try:
            raw_rates, verify_rates, alone_rates = [], [], []
            events = 0
            for round_ in range(1, args.rounds + 1):
                events, raw_seconds = raw_pass(ledger)
                verified, verify_seconds = verify_pass(ledger, objects, args.workers)
                alone, alone_seconds = verify_pass(ledger, objects, 0)
                assert verified == events == alone, (verified, events, alone)
                raw_rates.append(events / raw_seconds)
                verify_rates.append(events / verify_seconds)
                alone_rates.append(events / alone_seconds)
                say(
                    f"round {round_}: raw {raw_rates[-1]:,.0f} events/s, "
                    f"verify {verify_rates[-1]:,.0f} events/s with {args.workers} workers, "
                    f"{alone_rates[-1]:,.0f} in one process"
                )
            tracemalloc.start()
            verify_pass(ledger, objects, 0)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        finally:
            ledger.close()
    raw, verify = statistics.median(raw_rates), statistics.median(verify_rates)
    figures = {
        "events": events,
        "rows_per_batch": args.rows_per_batch,
        "build_seconds": round(build_seconds, 1),
        "raw_events_per_s": round(raw),
        "workers": args.workers,
        "verify_events_per_s": round(verify),
        "verify_one_process_events_per_s": round(statistics.median(alone_rates)),
        "verify_records_per_s": round(verify * args.rows_per_batch * args.events / events),
        "verify_peak_python_mib": round(peak / 2**20, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "ratio": round(verify / raw, 3),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name}: {value}")


if __name__ == "__main__":
    main()
