"""A platform's store built through the real ingest path, for the offline verifier: records
ingested in batches on four chains, snapshots published, and tree heads signed along the way."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.dataset import DatasetDefinition
from domain.provenance import Provenance
from storage.catalog import Catalog
from storage.head_timestamps import TimestampAuthority
from storage.ingestion import IngestLedger
from storage.object_store import ObjectStore
from storage.snapshots import SnapshotBuilder, SnapshotLedger
from storage.tree_heads import TreeHeadLedger, TreeHeadRecorder
from streams import wire
from streams.processor import IngestProcessor
from tests.support.platform import SENSOR_READINGS, reading_rows

NODE_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"audited store node").digest())
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class BuiltStore:
    url: str
    last_position: int


def build_store(
    url: str,
    objects: ObjectStore,
    rounds: int = 3,
    messages: int = 40,
    rows_each: int = 5,
    tsa: TimestampAuthority | None = None,
) -> BuiltStore:
    """``rounds`` of: ``messages`` ingest messages, tree heads every 16 events (timestamped by
    ``tsa``, if given), a snapshot. A last head is signed over everything before it."""
    catalog, ingest = Catalog(url), IngestLedger(url)
    snapshots, heads = SnapshotLedger(url), TreeHeadLedger(url)
    ticks = iter(range(10**9))
    try:
        dataset = DatasetDefinition.from_dict(yaml.safe_load(SENSOR_READINGS.read_text()))
        catalog.register(dataset)
        processor = IngestProcessor(ingest, catalog, clock=lambda: NOW)
        recorder = TreeHeadRecorder(
            heads,
            NODE_KEY,
            every_events=16,
            every_seconds=1.0,
            clock=lambda: float(next(ticks)),
            tsa=tsa,
        )
        builder = SnapshotBuilder(snapshots, catalog, objects)
        provenance = Provenance(
            "file:///readings.csv", NOW, "d" * 64, "tabular", "1", "gd-shenzhen", 1
        )
        headers = wire.headers_for(wire.KIND_RECORDS, dataset.id, provenance, None)
        for round_ in range(rounds):
            rows = reading_rows(messages * rows_each, prefix=f"r{round_}", start=NOW)
            for index in range(messages):
                chunk = rows[index * rows_each : (index + 1) * rows_each]
                offset = round_ * messages + index
                processor.process(
                    dataset.ingest_topic, index % 4, offset, wire.encode_rows(chunk), headers
                )
                if index % 8 == 7:
                    recorder.run_once()
            builder.run_once()
            # A head alone after the snapshot: the next build's range has no batches and
            # publishes nothing, so the snapshot after it does not start where this one ended.
            recorder.run_once()
            builder.run_once()
        recorder.run_once()
        return BuiltStore(url, heads.position())
    finally:
        for application in (catalog, ingest, snapshots, heads):
            application.close()
