"""Building snapshots from the event log and publishing them, exactly once per log range."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
from eventsourcing.persistence import Tracking
from eventsourcing.utils import get_topic
from opentelemetry import metrics, trace

from domain.dataset import DatasetDefinition
from domain.ingest import IngestChain
from domain.snapshot import (
    ChainHeadRef,
    Manifest,
    SnapshotFile,
    SnapshotLog,
    snapshot_id_for,
    snapshot_log_id,
)
from storage.catalog import Catalog
from storage.ledger import LedgerApplication
from storage.object_store import ObjectStore
from storage.parquet_snapshot import (
    manifest_key,
    partition_files,
    partition_key,
    records_table,
    writer_description,
)

BUILDER_TRACKING = "baylink-snapshot-builder"
_MAX_TRACE_IDS = 128
_tracer = trace.get_tracer("baylink.storage")
_snapshot_rows = metrics.get_meter("baylink.storage").create_counter(
    "baylink.snapshot.records", unit="{record}", description="Records written to snapshots"
)
_BATCH_TOPIC = get_topic(IngestChain.BatchRecorded)
_PAGE = 500


def snapshot_prefix(dataset: DatasetDefinition, snapshot_id: str) -> str:
    return f"snapshots/{dataset.id}/v{dataset.version}/{snapshot_id}"


@dataclass
class _DatasetRange:
    # Each batch becomes Arrow as it is read: only one batch's Python objects live at a time.
    tables: list[pa.Table] = field(default_factory=list)
    heads: dict[int, ChainHeadRef] = field(default_factory=dict)
    trace_ids: set[str] = field(default_factory=set)


class SnapshotLedger(LedgerApplication):
    """The snapshot builder's view of the shared store."""

    def built_up_to(self) -> int:
        """The last log position whose batches are in published snapshots."""
        return self.ledger.max_tracking_id(BUILDER_TRACKING) or 0

    def batches_between(
        self, first: int, last: int
    ) -> Iterator[tuple[int, IngestChain.BatchRecorded]]:
        """Every batch event with a log position in [first, last], in log order."""
        start = first
        while start <= last:
            page = self.recorder.select_notifications(
                start, _PAGE, stop=last, topics=[_BATCH_TOPIC]
            )
            if not page:
                return
            for notification in page:
                event = self.mapper.to_domain_event(notification)
                assert isinstance(event, IngestChain.BatchRecorded)
                yield notification.id, event
            start = page[-1].id + 1

    def publications(self, dataset_id: str) -> list[SnapshotLog.Published]:
        events = []
        for stored in self.recorder.select_events(snapshot_log_id(dataset_id)):
            event = self.mapper.to_domain_event(stored)
            assert isinstance(event, SnapshotLog.Published)
            events.append(event)
        return events

    def publish(self, events: list[SnapshotLog.Published], built_up_to: int) -> None:
        """Record the publications and the builder's position in one transaction."""
        self.events.put(events, tracking=Tracking(BUILDER_TRACKING, built_up_to))


class SnapshotBuilder:
    """Turns a range of the log into one verified snapshot per dataset that changed."""

    def __init__(self, ledger: SnapshotLedger, catalog: Catalog, store: ObjectStore) -> None:
        self.ledger = ledger
        self.catalog = catalog
        self.store = store

    def run_once(self, up_to: int | None = None) -> list[Manifest]:
        """Snapshot everything stored since the last run; returns the new manifests."""
        first = self.ledger.built_up_to() + 1
        last = self.ledger.position() if up_to is None else up_to
        if last < first:
            return []
        manifests = []
        events = []
        for dataset_id in sorted(self._datasets_with_batches(first, last)):
            dataset = self.catalog.get(dataset_id)
            manifest = self.build(dataset, first, last)
            manifests.append(manifest)
            events.append(self._published_event(dataset, manifest))
        self.ledger.publish(events, last)
        return manifests

    def build(self, dataset: DatasetDefinition, first: int, last: int) -> Manifest:
        """Write (or rewrite, byte for byte) the snapshot of ``dataset`` over [first, last]."""
        with _tracer.start_as_current_span(
            f"snapshot write {dataset.id}",
            attributes={
                "baylink.dataset": dataset.id,
                "baylink.log.first_position": first,
                "baylink.log.last_position": last,
            },
        ) as span:
            manifest = self._build(dataset, first, last, span)
            span.set_attributes(
                {
                    "baylink.snapshot.id": manifest.snapshot_id,
                    "baylink.records": manifest.row_count,
                    "baylink.files": len(manifest.files),
                }
            )
        _snapshot_rows.add(manifest.row_count, {"dataset": dataset.id})
        return manifest

    def _build(
        self, dataset: DatasetDefinition, first: int, last: int, span: trace.Span
    ) -> Manifest:
        collected = self._collect(dataset, first, last)
        # The traces that brought these records in; a span can only link to a span, and the
        # store keeps trace ids, so they are listed (capped) for a trace search to find.
        if collected.trace_ids:
            span.set_attribute(
                "baylink.ingest.trace_ids", sorted(collected.trace_ids)[:_MAX_TRACE_IDS]
            )
        snapshot_id = snapshot_id_for(first, last)
        prefix = snapshot_prefix(dataset, snapshot_id)
        files = []
        table = (
            pa.concat_tables(collected.tables) if collected.tables else records_table(dataset, [])
        )
        for part in partition_files(dataset, table):
            info = self.store.put(partition_key(prefix, part.region, part.date), part.data)
            files.append(
                SnapshotFile(info.key, part.region, part.date, part.rows, info.size, info.sha256)
            )
        manifest = Manifest(
            dataset_id=dataset.id,
            schema_version=dataset.version,
            snapshot_id=snapshot_id,
            first_position=first,
            last_position=last,
            row_count=sum(f.rows for f in files),
            files=tuple(files),
            chain_heads=tuple(collected.heads[p] for p in sorted(collected.heads)),
            writer=writer_description(),
        )
        self.store.put(manifest_key(prefix), manifest.to_json(), content_type="application/json")
        return manifest

    def _datasets_with_batches(self, first: int, last: int) -> set[str]:
        return {batch.dataset_id for _, batch in self.ledger.batches_between(first, last)}

    def _collect(self, dataset: DatasetDefinition, first: int, last: int) -> _DatasetRange:
        collected = _DatasetRange(heads=self._heads_before(dataset, first))
        for _, batch in self.ledger.batches_between(first, last):
            if batch.dataset_id != dataset.id:
                continue
            if batch.record_count:
                collected.tables.append(records_table(dataset, batch.accepted()))
                trace_id = batch.provenance.get("trace_id")
                if trace_id:
                    collected.trace_ids.add(str(trace_id))
            collected.heads[batch.partition] = ChainHeadRef(
                batch.partition, batch.originator_version, batch.hash
            )
        return collected

    def _heads_before(self, dataset: DatasetDefinition, first: int) -> dict[int, ChainHeadRef]:
        """Chain heads as the snapshot before this range left them."""
        earlier = [p for p in self.ledger.publications(dataset.id) if p.last_position < first]
        if not earlier:
            return {}
        return {
            int(partition): ChainHeadRef(int(partition), int(version), str(hash_))
            for partition, version, hash_ in earlier[-1].chain_heads
        }

    def _published_event(
        self, dataset: DatasetDefinition, manifest: Manifest
    ) -> SnapshotLog.Published:
        log_id = snapshot_log_id(dataset.id)
        stored = self.ledger.recorder.select_events(log_id, desc=True, limit=1)
        version = stored[0].originator_version + 1 if stored else 1
        return SnapshotLog.Published(
            originator_id=log_id,
            originator_version=version,
            timestamp=SnapshotLog.Published.create_timestamp(),
            dataset_id=dataset.id,
            snapshot_id=manifest.snapshot_id,
            manifest_key=manifest_key(snapshot_prefix(dataset, manifest.snapshot_id)),
            manifest_sha256=manifest.sha256(),
            first_position=manifest.first_position,
            last_position=manifest.last_position,
            row_count=manifest.row_count,
            chain_heads=[[h.partition, h.version, h.hash] for h in manifest.chain_heads],
        )
