"""Queries over a dataset's records: every published snapshot plus the tail of the log that no
snapshot holds yet, so an answer is complete up to the store position it names.

Records are stored exactly once and snapshots cover disjoint ranges of the log, so the union of
the snapshots' files and the tail holds each record once. Pages are ordered by
(time field, record_id) and continue from an opaque cursor: the last (time, record_id) of the
previous page and a fingerprint of the filters it was issued for.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from domain.agreement import RowScope
from domain.dataset import DatasetDefinition, FieldType
from domain.errors import DatasetNotFoundError
from domain.ingest import IngestChain
from domain.record import from_micros, to_micros
from domain.region import RegionRegistry
from domain.snapshot import Manifest, SnapshotFile, SnapshotLog, snapshot_log_id
from storage.arrow_access import (
    ArrowLocation,
    arrow_location,
    fragments_dataset,
    parquet_fragment,
)
from storage.catalog import Catalog
from storage.errors import (
    BadCursorError,
    BadFilterError,
    ObjectStoreError,
    SnapshotUnavailableError,
    UnknownDatasetError,
    UnknownRecordError,
    UnknownSnapshotError,
)
from storage.geometry_column import intersects_box
from storage.ingestion import IngestLedger
from storage.object_store import ObjectStore
from storage.parquet_snapshot import record_schema, records_table
from storage.snapshots import SnapshotLedger

MAX_LIMIT = 10_000
"""Most records one page may hold."""
DEFAULT_LIMIT = 1_000
"""Records in a page when the caller does not say."""
SYSTEM_FIELDS = ("record_id", "region")

_CURSOR_VERSION = 1
_RECORD_ID = re.compile(r"^[0-9a-f]{32}$")
_POSITION = "_log_position"
_MANIFEST_CACHE_SIZE = 4_096
_DAY = timedelta(days=1)
# Instants a datetime can show: the bounds of times in filters and cursors.
_EARLIEST = to_micros(datetime.min.replace(tzinfo=UTC))
_LATEST = to_micros(datetime.max.replace(tzinfo=UTC))


@dataclass(frozen=True, slots=True)
class BoundingBox:
    """An area in WGS-84 degrees: west, south, east and north edges, inclusive."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    def __post_init__(self) -> None:
        values = (self.min_lon, self.min_lat, self.max_lon, self.max_lat)
        if not all(math.isfinite(v) for v in values):
            raise BadFilterError("bbox", "bbox edges must be finite numbers")
        if not (-180 <= self.min_lon <= 180 and -180 <= self.max_lon <= 180):
            raise BadFilterError("bbox", "bbox longitudes must lie between -180 and 180")
        if not (-90 <= self.min_lat <= 90 and -90 <= self.max_lat <= 90):
            raise BadFilterError("bbox", "bbox latitudes must lie between -90 and 90")
        if self.min_lon > self.max_lon:
            raise BadFilterError(
                "bbox", f"bbox min_lon {self.min_lon} is east of max_lon {self.max_lon}"
            )
        if self.min_lat > self.max_lat:
            raise BadFilterError(
                "bbox", f"bbox min_lat {self.min_lat} is north of max_lat {self.max_lat}"
            )

    @classmethod
    def parse(cls, text: str) -> BoundingBox:
        """Read ``min_lon,min_lat,max_lon,max_lat``."""
        parts = text.split(",")
        if len(parts) != 4:
            raise BadFilterError(
                "bbox", f"bbox must be min_lon,min_lat,max_lon,max_lat; got {text!r}"
            )
        try:
            min_lon, min_lat, max_lon, max_lat = (float(part) for part in parts)
        except ValueError:
            raise BadFilterError("bbox", f"bbox edges must be numbers; got {text!r}") from None
        return cls(min_lon, min_lat, max_lon, max_lat)

    def as_list(self) -> list[float]:
        return [self.min_lon, self.min_lat, self.max_lon, self.max_lat]


@dataclass(frozen=True, slots=True)
class SnapshotSummary:
    """One published snapshot as its publication event describes it."""

    snapshot_id: str
    first_position: int
    last_position: int
    row_count: int
    published_at: datetime
    manifest_key: str
    manifest_sha256: str

    @classmethod
    def of(cls, event: SnapshotLog.Published) -> SnapshotSummary:
        return cls(
            snapshot_id=event.snapshot_id,
            first_position=event.first_position,
            last_position=event.last_position,
            row_count=event.row_count,
            published_at=event.timestamp,
            manifest_key=event.manifest_key,
            manifest_sha256=event.manifest_sha256,
        )


@dataclass(frozen=True, slots=True)
class Freshness:
    """How current a dataset's answers are: the store's newest log position, and the last
    position and publication time of the newest snapshot (None before the first one)."""

    store_position: int
    snapshot_position: int | None
    snapshot_published_at: datetime | None


@dataclass(frozen=True)
class DatasetSummary:
    """A registered dataset and its newest snapshot."""

    definition: DatasetDefinition
    latest_snapshot: SnapshotSummary | None


@dataclass(frozen=True)
class DatasetDescription:
    """A dataset's definition, the columns of its records and how fresh its snapshots are."""

    definition: DatasetDefinition
    schema: pa.Schema
    snapshots: list[SnapshotSummary]
    freshness: Freshness

    @property
    def latest_snapshot(self) -> SnapshotSummary | None:
        return self.snapshots[-1] if self.snapshots else None


@dataclass(frozen=True)
class RecordPage:
    """One page of records, the cursor of the next page (None on the last) and the log position
    the answer is complete up to."""

    table: pa.Table
    next_cursor: str | None
    current_to_position: int


@dataclass(frozen=True)
class AggregateResult:
    """One row per group with the asked metrics, and the log position it is complete up to."""

    table: pa.Table
    current_to_position: int


AGGREGATE_FUNCTIONS = ("count", "sum", "mean", "min", "max")


@dataclass(frozen=True)
class PublishedSnapshot:
    """A snapshot's manifest, and a URL for the manifest and for each of its files."""

    summary: SnapshotSummary
    manifest: Manifest
    manifest_url: str
    file_urls: dict[str, str]


@dataclass(frozen=True)
class RecordProvenance:
    """Where one record came from and where it is kept: its batch on its hash chain, the log
    position of that batch when known, and the snapshot that holds it (None while in the tail)."""

    record_id: str
    dataset_id: str
    region: str
    chain_id: UUID
    partition: int
    batch_version: int
    batch_hash: str
    previous_hash: str
    records_digest: str
    recorded_at: datetime
    provenance: dict[str, Any]
    log_position: int | None
    snapshot_id: str | None


@dataclass(frozen=True, slots=True)
class _Filters:
    """A records query's filters, checked against the dataset."""

    start: int | None
    end: int | None
    region: str | None
    bbox: BoundingBox | None
    # A grant's limits beyond the caller's own filters (its time window is in start and end).
    scope_regions: frozenset[str] | None = None
    scope_bbox: tuple[float, float, float, float] | None = None

    def fingerprint(self, dataset_id: str) -> str:
        regions = None if self.scope_regions is None else sorted(self.scope_regions)
        text = json.dumps(
            [dataset_id, self.start, self.end, self.region, self.bbox and self.bbox.as_list()]
            + ([] if regions is None and self.scope_bbox is None else [regions, self.scope_bbox])
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class _After:
    """Where the previous page ended."""

    time: int
    record_id: str


@dataclass
class _OpenedSnapshot:
    """A published snapshot's manifest and one dataset fragment per file."""

    manifest: Manifest
    fragments: list[tuple[SnapshotFile, ds.Fragment]]


@dataclass
class _Tail:
    """Records of one dataset in batches after its newest snapshot, with the log position of
    their batch in a hidden column, and the position of each batch by (chain, version)."""

    first: int
    last: int
    table: pa.Table
    batches: dict[tuple[UUID, int], int] = field(default_factory=dict)


@dataclass(frozen=True)
class _View:
    """What one query reads: the snapshots published so far and the tail after them."""

    snapshots: list[_OpenedSnapshot]
    tail: pa.Table
    position: int


class QueryService:
    """Read-only queries over the catalog, published snapshots and the tail of the log."""

    def __init__(
        self,
        catalog: Catalog,
        snapshot_ledger: SnapshotLedger,
        ingest_ledger: IngestLedger,
        object_store: ObjectStore,
        regions: RegionRegistry | None = None,
    ) -> None:
        self.catalog = catalog
        self.snapshot_ledger = snapshot_ledger
        self.ingest_ledger = ingest_ledger
        self.object_store = object_store
        self.regions = regions or RegionRegistry.default()
        self._location: ArrowLocation | None = arrow_location(object_store)
        self._opened: OrderedDict[tuple[str, str, str], _OpenedSnapshot] = OrderedDict()
        self._published: dict[str, tuple[SnapshotLog.Published, ...]] = {}
        self._tails: dict[str, _Tail] = {}
        self._tail_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        for application in (self.catalog, self.snapshot_ledger, self.ingest_ledger):
            application.close()

    # Catalog -----------------------------------------------------------------------------

    def list_datasets(self) -> list[DatasetSummary]:
        """Every registered dataset with its newest snapshot, ordered by id."""
        return [
            DatasetSummary(definition, self._latest(self._summaries(definition.id)))
            for definition in self.catalog.list(self.regions)
        ]

    def dataset(self, dataset_id: str) -> DatasetDescription:
        definition = self._definition(dataset_id)
        snapshots = self._summaries(dataset_id)
        latest = self._latest(snapshots)
        freshness = Freshness(
            store_position=self.snapshot_ledger.position(),
            snapshot_position=latest.last_position if latest else None,
            snapshot_published_at=latest.published_at if latest else None,
        )
        return DatasetDescription(definition, record_schema(definition), snapshots, freshness)

    # Snapshots ---------------------------------------------------------------------------

    def snapshots(self, dataset_id: str) -> list[SnapshotSummary]:
        """The dataset's published snapshots, oldest first."""
        self._definition(dataset_id)
        return self._summaries(dataset_id)

    def snapshot(
        self, dataset_id: str, snapshot_id: str, expires_seconds: int = 3600
    ) -> PublishedSnapshot:
        """One snapshot's manifest, with URLs a reader outside baylink can fetch from."""
        self._definition(dataset_id)
        for event in self._publications(dataset_id):
            if event.snapshot_id == snapshot_id:
                manifest = self._manifest(event)
                return PublishedSnapshot(
                    summary=SnapshotSummary.of(event),
                    manifest=manifest,
                    manifest_url=self.object_store.url_for(event.manifest_key, expires_seconds),
                    file_urls={
                        f.key: self.object_store.url_for(f.key, expires_seconds)
                        for f in manifest.files
                    },
                )
        raise UnknownSnapshotError(
            f"dataset {dataset_id!r} has published no snapshot {snapshot_id!r}"
        )

    # Records -----------------------------------------------------------------------------

    def records(
        self,
        dataset_id: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        region: str | None = None,
        bbox: BoundingBox | None = None,
        fields: Sequence[str] | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        scope: RowScope | None = None,
    ) -> RecordPage:
        """One page of the records that match every filter, ordered by (time, record_id).

        ``start`` is inclusive and ``end`` exclusive; both need a UTC offset. ``bbox`` keeps
        records whose point lies inside it or whose geometry intersects it, edges included.
        ``fields`` chooses the columns (record_id is always returned). ``scope`` limits the rows
        further (a grant's regions, box and time window). Raises UnknownDatasetError, or
        BadFilterError naming the parameter at fault.
        """
        dataset = self._definition(dataset_id)
        filters = self._filters(dataset, start, end, region, bbox, scope)
        columns = _projection(dataset, fields)
        if isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
            raise BadFilterError("limit", f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
        fingerprint = filters.fingerprint(dataset.id)
        after = _decode_cursor(cursor, fingerprint) if cursor is not None else None
        view = self._view(dataset)
        page = _page(dataset, view, filters, after, limit, self._location)
        next_cursor = None
        if page.num_rows > limit:
            page = page.slice(0, limit)
            last = page.slice(limit - 1, 1)
            next_cursor = _encode_cursor(
                _After(
                    _micros(last[dataset.time_field][0].as_py()),
                    str(last["record_id"][0].as_py()),
                ),
                fingerprint,
            )
        return RecordPage(page.select(columns), next_cursor, view.position)

    # Aggregates --------------------------------------------------------------------------

    def aggregate(
        self,
        dataset_id: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        region: str | None = None,
        bbox: BoundingBox | None = None,
        group_by: Sequence[str] = ("region",),
        metrics: Sequence[str] = ("count",),
        scope: RowScope | None = None,
    ) -> AggregateResult:
        """Metrics per group over every matching record, in one scan of only the needed columns.

        ``metrics`` are ``count`` or ``<function>:<field>`` with a function of
        AGGREGATE_FUNCTIONS and a numeric field. Filters and scope are those of ``records``.
        """
        dataset = self._definition(dataset_id)
        filters = self._filters(dataset, start, end, region, bbox, scope)
        schema = record_schema(dataset)
        keys = _group_keys(schema, group_by)
        wanted = _metrics(dataset, metrics)
        # A table of no columns loses its row count; record_id carries the rows for count.
        columns = list(dict.fromkeys([*keys, *(f for f, _ in wanted if f)])) or ["record_id"]
        read = columns
        boxed = filters.bbox is not None or filters.scope_bbox is not None
        if boxed and dataset.feature_geometry is not None:
            read = list(dict.fromkeys([*columns, dataset.feature_geometry.field]))
        view = self._view(dataset)
        predicate = _predicate(dataset, filters, None)
        fragments = [
            fragment
            for files in _candidate_files(view, filters, None).values()
            for _, fragment in files
        ]
        scanned = fragments_dataset(schema, fragments, self._location).to_table(
            columns=read, filter=predicate
        )
        tail = view.tail if predicate is None else view.tail.filter(predicate)
        combined = pa.concat_tables([scanned, tail.select(read).cast(scanned.schema)])
        combined = _in_area(dataset, filters, combined).select(columns)
        aggregations = [(f, fn) if f else ([], "count_all") for f, fn in wanted]
        grouped = combined.group_by(keys).aggregate(aggregations)
        names = [*keys, *(f"{fn}_{f}" if f else "count" for f, fn in wanted)]
        ordered = grouped.select(
            [*keys, *(f"{f}_{fn}" if f else "count_all" for f, fn in wanted)]
        ).rename_columns(names)
        if keys:
            ordered = ordered.sort_by([(k, "ascending") for k in keys])
        return AggregateResult(ordered, view.position)

    # Provenance --------------------------------------------------------------------------

    def provenance(self, record_id: str, scope: RowScope | None = None) -> RecordProvenance:
        """The batch a record was stored in, with its provenance and chain links.

        With ``scope``, a record outside it is answered as one that does not exist."""
        if not _RECORD_ID.match(record_id):
            raise BadFilterError(
                "record_id", f"a record id is 32 lower-case hex digits, not {record_id!r}"
            )
        located = self.ingest_ledger.ledger.locate_record(record_id)
        if located is None:
            raise UnknownRecordError(f"no stored batch holds record {record_id!r}")
        chain_id, version = located
        stored = self.ingest_ledger.recorder.select_events(
            chain_id, gt=version - 1, lte=version, limit=1
        )
        if not stored:
            raise UnknownRecordError(f"the batch of record {record_id!r} is not in the store")
        batch = self.ingest_ledger.mapper.to_domain_event(stored[0])
        assert isinstance(batch, IngestChain.BatchRecorded)
        row = next((r for r in batch.accepted() if r[0] == record_id), None)
        region = "" if row is None else str(row[1])
        if scope is not None and (row is None or not self._within(batch.dataset_id, row, scope)):
            raise UnknownRecordError(f"no stored batch holds record {record_id!r}")
        snapshot_id = self._snapshot_holding(batch)
        log_position = None
        if snapshot_id is None:
            tail = self._current_tail(self._definition(batch.dataset_id))
            log_position = tail.batches.get((chain_id, version))
            if log_position is None:  # snapshotted since the first look
                snapshot_id = self._snapshot_holding(batch)
        return RecordProvenance(
            record_id=record_id,
            dataset_id=batch.dataset_id,
            region=region,
            chain_id=chain_id,
            partition=batch.partition,
            batch_version=batch.originator_version,
            batch_hash=batch.hash,
            previous_hash=batch.previous_hash,
            records_digest=batch.records_digest,
            recorded_at=batch.timestamp,
            provenance=dict(batch.provenance),
            log_position=log_position,
            snapshot_id=snapshot_id,
        )

    # Internals ---------------------------------------------------------------------------

    def _within(self, dataset_id: str, row: Sequence[object], scope: RowScope) -> bool:
        dataset = self._definition(dataset_id)
        table = records_table(dataset, [list(row)])
        return bool(rows_in_scope(dataset, table, scope).num_rows == 1)

    def _definition(self, dataset_id: str) -> DatasetDefinition:
        try:
            return self.catalog.get(dataset_id, self.regions)
        except DatasetNotFoundError:
            raise UnknownDatasetError(f"no dataset {dataset_id!r} is registered") from None

    def _summaries(self, dataset_id: str) -> list[SnapshotSummary]:
        return [SnapshotSummary.of(e) for e in self._publications(dataset_id)]

    @staticmethod
    def _latest(snapshots: list[SnapshotSummary]) -> SnapshotSummary | None:
        return max(snapshots, key=lambda s: s.last_position) if snapshots else None

    def _filters(
        self,
        dataset: DatasetDefinition,
        start: datetime | None,
        end: datetime | None,
        region: str | None,
        bbox: BoundingBox | None,
        scope: RowScope | None = None,
    ) -> _Filters:
        start_micros = _instant("start", start)
        end_micros = _instant("end", end)
        if start_micros is not None and end_micros is not None and end_micros <= start_micros:
            raise BadFilterError("end", f"end {end} is not after start {start}")
        if scope is not None:
            # The grant's window narrows the caller's; an empty overlap matches nothing.
            if scope.start is not None:
                granted = to_micros(scope.start)
                start_micros = granted if start_micros is None else max(granted, start_micros)
            if scope.end is not None:
                granted = to_micros(scope.end)
                end_micros = granted if end_micros is None else min(granted, end_micros)
        if region is not None and region not in self.regions:
            known = ", ".join(sorted(r.code for r in self.regions))
            raise BadFilterError("region", f"unknown region {region!r}; known regions: {known}")
        if bbox is not None and dataset.geometry is None and dataset.feature_geometry is None:
            raise BadFilterError("bbox", f"dataset {dataset.id!r} has no geometry")
        return _Filters(
            start_micros,
            end_micros,
            region,
            bbox,
            None if scope is None else scope.regions,
            None if scope is None else scope.bbox,
        )

    def _view(self, dataset: DatasetDefinition) -> _View:
        publications, tail = self._current(dataset)
        opened = [self._open(p) for p in publications]
        return _View(opened, tail.table.drop_columns([_POSITION]), tail.last)

    def _current(self, dataset: DatasetDefinition) -> tuple[list[SnapshotLog.Published], _Tail]:
        """The dataset's publications and the tail after them, up to the store's position."""
        # Read the builder's position before the publications: a snapshot published in
        # between is then in the list, and the tail starts after it.
        built = self.snapshot_ledger.built_up_to()
        publications = self._publications(dataset.id)
        position = self.snapshot_ledger.position()
        published_to = max((p.last_position for p in publications), default=0)
        return publications, self._tail(dataset, max(built, published_to) + 1, position)

    def _current_tail(self, dataset: DatasetDefinition) -> _Tail:
        return self._current(dataset)[1]

    def _publications(self, dataset_id: str) -> list[SnapshotLog.Published]:
        """The dataset's snapshot log, oldest first; only events not seen before are read."""
        with self._lock:
            known = self._published.get(dataset_id, ())
        after = known[-1].originator_version if known else 0
        ledger = self.snapshot_ledger
        newer = []
        for stored in ledger.recorder.select_events(snapshot_log_id(dataset_id), gt=after):
            event = ledger.mapper.to_domain_event(stored)
            assert isinstance(event, SnapshotLog.Published)
            newer.append(event)
        if not newer:
            return list(known)
        with self._lock:
            current = self._published.get(dataset_id, ())
            if len(current) == len(known):
                current = (*known, *newer)
                self._published[dataset_id] = current
            return list(current)

    def _manifest(self, event: SnapshotLog.Published) -> Manifest:
        try:
            data = self.object_store.get(event.manifest_key)
        except ObjectStoreError as error:
            raise SnapshotUnavailableError(
                f"snapshot {event.snapshot_id} of {event.dataset_id!r}: manifest "
                f"{event.manifest_key!r} cannot be read: {error}"
            ) from error
        manifest = Manifest.from_json(data)
        if manifest.sha256() != event.manifest_sha256:
            raise SnapshotUnavailableError(
                f"snapshot {event.snapshot_id} of {event.dataset_id!r}: manifest "
                f"{event.manifest_key!r} does not match the SHA-256 it was published with"
            )
        return manifest

    def _open(self, event: SnapshotLog.Published) -> _OpenedSnapshot:
        key = (event.dataset_id, event.snapshot_id, event.manifest_sha256)
        with self._lock:
            cached = self._opened.get(key)
            if cached is not None:
                self._opened.move_to_end(key)
                return cached
        manifest = self._manifest(event)
        try:
            fragments = [
                (
                    file,
                    parquet_fragment(
                        self.object_store,
                        self._location,
                        file.key,
                        ds.field("region") == file.region,
                    ),
                )
                for file in manifest.files
            ]
        except (ObjectStoreError, OSError) as error:
            raise SnapshotUnavailableError(
                f"snapshot {event.snapshot_id} of {event.dataset_id!r} cannot be read: {error}"
            ) from error
        opened = _OpenedSnapshot(manifest, fragments)
        with self._lock:
            self._opened[key] = opened
            while len(self._opened) > _MANIFEST_CACHE_SIZE:
                self._opened.popitem(last=False)
        return opened

    def _tail(self, dataset: DatasetDefinition, first: int, last: int) -> _Tail:
        """Records of the dataset's batches in [first, last]: the cached tail, extended by
        the batches stored since and without those a snapshot now holds."""
        with self._lock:
            lock = self._tail_locks.setdefault(dataset.id, threading.Lock())
        with lock:
            tail = self._tails.get(dataset.id)
            if tail is None or tail.first > first or tail.last > last:
                tail = _Tail(first, first - 1, _tail_table(dataset, [], []))
            if tail.last < last:
                batches = self.snapshot_ledger.batches_between(tail.last + 1, last)
                tail = _extended(tail, dataset, batches, last)
            if tail.first < first:
                keep = pc.greater_equal(tail.table[_POSITION], first)
                tail = _Tail(
                    first,
                    tail.last,
                    tail.table.filter(keep),
                    {k: p for k, p in tail.batches.items() if p >= first},
                )
            self._tails[dataset.id] = tail
            return tail

    def _snapshot_holding(self, batch: IngestChain.BatchRecorded) -> str | None:
        """The first snapshot whose chain head for the batch's partition is at or past it."""
        for event in self._publications(batch.dataset_id):
            for partition, version, _ in event.chain_heads:
                if int(partition) == batch.partition and int(version) >= batch.originator_version:
                    return event.snapshot_id
        return None


def _extended(
    tail: _Tail,
    dataset: DatasetDefinition,
    batches: Iterator[tuple[int, IngestChain.BatchRecorded]],
    last: int,
) -> _Tail:
    records: list[list[object]] = []
    positions: list[int] = []
    found = dict(tail.batches)
    for position, batch in batches:
        if batch.dataset_id != dataset.id:
            continue
        found[(batch.originator_id, batch.originator_version)] = position
        accepted = batch.accepted()
        records.extend(accepted)
        positions.extend([position] * len(accepted))
    if not records:
        return _Tail(tail.first, last, tail.table, found)
    table = pa.concat_tables([tail.table, _tail_table(dataset, records, positions)])
    return _Tail(tail.first, last, table, found)


def _tail_table(
    dataset: DatasetDefinition, records: list[list[object]], positions: list[int]
) -> pa.Table:
    table = records_table(dataset, records)
    return table.append_column(_POSITION, pa.array(positions, type=pa.int64()))


def _instant(parameter: str, moment: datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.utcoffset() is None:
        raise BadFilterError(
            parameter, f"{parameter} {moment.isoformat()} needs a UTC offset, e.g. ...Z or +08:00"
        )
    micros = to_micros(moment)
    if not _EARLIEST <= micros <= _LATEST:
        raise BadFilterError(parameter, f"{parameter} {moment.isoformat()} is before year 1 UTC")
    return micros


def _micros(moment: object) -> int:
    assert isinstance(moment, datetime)
    return to_micros(moment)


def _group_keys(schema: pa.Schema, group_by: Sequence[str]) -> list[str]:
    keys = list(dict.fromkeys(group_by))
    for key in keys:
        if key not in schema.names or key == "record_id":
            raise BadFilterError("group_by", f"cannot group by {key!r}: not a groupable field")
        if pa.types.is_floating(schema.field(key).type):
            raise BadFilterError("group_by", f"cannot group by {key!r}: it is a float field")
    return keys


def _metrics(dataset: DatasetDefinition, metrics: Sequence[str]) -> list[tuple[str, str]]:
    """``count`` or ``function:field`` → (field, pyarrow function); field is '' for count."""
    if not metrics:
        raise BadFilterError("metrics", "ask for at least one metric, e.g. count or mean:speed")
    out: list[tuple[str, str]] = []
    for metric in dict.fromkeys(metrics):
        if metric == "count":
            out.append(("", "count"))
            continue
        function, _, name = metric.partition(":")
        if function not in AGGREGATE_FUNCTIONS or function == "count" or not name:
            raise BadFilterError(
                "metrics",
                f"{metric!r} is not count or <function>:<field> with a function of "
                f"{', '.join(AGGREGATE_FUNCTIONS[1:])}",
            )
        if not dataset.has_field(name) or dataset.field(name).type not in (
            FieldType.INT64,
            FieldType.FLOAT64,
        ):
            raise BadFilterError("metrics", f"{name!r} is not a numeric field of {dataset.id!r}")
        out.append((name, function))
    return out


def _projection(dataset: DatasetDefinition, fields: Sequence[str] | None) -> list[str]:
    known = [*SYSTEM_FIELDS, *dataset.field_names]
    if fields is None:
        return known
    wanted = ["record_id"]
    for name in fields:
        if name not in known:
            raise BadFilterError(
                "fields",
                f"dataset {dataset.id!r} has no field {name!r}; its fields are " + ", ".join(known),
            )
        if name not in wanted:
            wanted.append(name)
    return wanted


def _timestamp(micros: int) -> pa.Scalar:
    return pa.scalar(micros, type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))


def _predicate(
    dataset: DatasetDefinition, filters: _Filters, after: _After | None
) -> ds.Expression | None:
    time = ds.field(dataset.time_field)
    terms: list[ds.Expression] = []
    if filters.start is not None:
        terms.append(time >= _timestamp(filters.start))
    if filters.end is not None:
        terms.append(time < _timestamp(filters.end))
    if filters.region is not None:
        terms.append(ds.field("region") == filters.region)
    if filters.bbox is not None and dataset.geometry is not None:
        lon, lat = ds.field(dataset.geometry.lon), ds.field(dataset.geometry.lat)
        box = filters.bbox
        terms += [lon >= box.min_lon, lon <= box.max_lon, lat >= box.min_lat, lat <= box.max_lat]
    if filters.scope_regions is not None:
        allowed = pa.array(sorted(filters.scope_regions), pa.string())
        terms.append(ds.field("region").isin(allowed))
    if filters.scope_bbox is not None and dataset.feature_geometry is None:
        if dataset.geometry is None:
            terms.append(ds.scalar(False))  # a box cannot be checked without a location
        else:
            lon, lat = ds.field(dataset.geometry.lon), ds.field(dataset.geometry.lat)
            west, south, east, north = filters.scope_bbox
            terms += [lon >= west, lon <= east, lat >= south, lat <= north]
    if after is not None:
        moment = _timestamp(after.time)
        terms.append(
            (time > moment) | ((time == moment) & (ds.field("record_id") > after.record_id))
        )
    if not terms:
        return None
    predicate = terms[0]
    for term in terms[1:]:
        predicate = predicate & term
    return predicate


def rows_in_scope(dataset: DatasetDefinition, table: pa.Table, scope: RowScope) -> pa.Table:
    """The rows of ``table`` (in the dataset's record schema) that a grant's ``scope`` reaches."""
    filters = _Filters(
        None if scope.start is None else to_micros(scope.start),
        None if scope.end is None else to_micros(scope.end),
        None,
        None,
        scope.regions,
        scope.bbox,
    )
    predicate = _predicate(dataset, filters, None)
    if predicate is not None:
        table = table.filter(predicate)
    return _in_area(dataset, filters, table)


def _in_area(dataset: DatasetDefinition, filters: _Filters, table: pa.Table) -> pa.Table:
    """The rows whose geometry intersects the bbox, for datasets with a geometry field (the
    point form is filtered by the scan's predicate instead)."""
    declaration = dataset.feature_geometry
    if declaration is None:
        return table
    if filters.bbox is not None:
        box = filters.bbox
        edges = (box.min_lon, box.min_lat, box.max_lon, box.max_lat)
        table = table.filter(intersects_box(table[declaration.field], edges))
    if filters.scope_bbox is not None:
        # A grant's box, for a geometry field: what intersects it is within the grant.
        table = table.filter(intersects_box(table[declaration.field], filters.scope_bbox))
    return table


def _day(micros: int) -> str:
    return from_micros(micros).strftime("%Y-%m-%d")


def _candidate_files(
    view: _View, filters: _Filters, after: _After | None
) -> dict[str, list[tuple[SnapshotFile, ds.Fragment]]]:
    """Snapshot files that may hold matching records, by day."""
    first_day = max(
        (_day(t) for t in (filters.start, after.time if after else None) if t is not None),
        default=None,
    )
    last_day = _day(filters.end - 1) if filters.end is not None else None
    by_day: dict[str, list[tuple[SnapshotFile, ds.Fragment]]] = {}
    for opened in view.snapshots:
        for file, fragment in opened.fragments:
            if filters.region is not None and file.region != filters.region:
                continue
            if filters.scope_regions is not None and file.region not in filters.scope_regions:
                continue
            if (first_day is not None and file.date < first_day) or (
                last_day is not None and file.date > last_day
            ):
                continue
            by_day.setdefault(file.date, []).append((file, fragment))
    return by_day


def _page(
    dataset: DatasetDefinition,
    view: _View,
    filters: _Filters,
    after: _After | None,
    limit: int,
    location: ArrowLocation | None,
) -> pa.Table:
    """Up to ``limit + 1`` matching records in (time, record_id) order.

    Snapshot files are read a day at a time, in day order, until more than ``limit`` records
    have matched: every record of a later day comes after all of them, so the first
    ``limit + 1`` records overall are among those read and the tail's up to that day.
    """
    predicate = _predicate(dataset, filters, after)
    schema = record_schema(dataset)
    wanted = limit + 1
    by_day = _candidate_files(view, filters, after)
    days = sorted(by_day)
    parts: list[pa.Table] = []
    matched = read = 0
    index = 0
    last_day: str | None = None
    while index < len(days) and matched < wanted:
        # Read enough days that, at the selectivity seen so far, the page fills.
        selectivity = max(matched / read, 0.01) if read else 1.0
        target = (wanted - matched) / selectivity
        fragments: list[ds.Fragment] = []
        rows = 0
        while index < len(days) and (not fragments or rows < target):
            for file, fragment in by_day[days[index]]:
                fragments.append(fragment)
                rows += file.rows
            last_day = days[index]
            index += 1
        table = fragments_dataset(schema, fragments, location).to_table(filter=predicate)
        table = _in_area(dataset, filters, table)
        parts.append(table)
        matched += table.num_rows
        read += rows
    tail = _in_area(
        dataset, filters, view.tail if predicate is None else view.tail.filter(predicate)
    )
    if matched >= wanted and last_day is not None:
        # Tail records after the last day read come after every record read.
        next_day = datetime.strptime(last_day, "%Y-%m-%d").replace(tzinfo=UTC) + _DAY
        tail = tail.filter(pc.less(tail[dataset.time_field], _timestamp(to_micros(next_day))))
    parts.append(tail.cast(schema))
    combined = pa.concat_tables(parts)
    order = pc.sort_indices(
        combined, sort_keys=[(dataset.time_field, "ascending"), ("record_id", "ascending")]
    )
    return combined.take(order.slice(0, wanted))


def _encode_cursor(after: _After, fingerprint: str) -> str:
    body = json.dumps(
        {"v": _CURSOR_VERSION, "t": after.time, "id": after.record_id, "f": fingerprint},
        separators=(",", ":"),
    )
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, fingerprint: str) -> _After:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise BadCursorError(
            "cursor is not one this API issued; pass next_cursor from the previous page"
        ) from None
    if (
        not isinstance(raw, dict)
        or raw.get("v") != _CURSOR_VERSION
        or type(raw.get("t")) is not int
        or not _EARLIEST <= raw["t"] <= _LATEST
        or not isinstance(raw.get("id"), str)
        or not _RECORD_ID.match(raw["id"])
        or not isinstance(raw.get("f"), str)
    ):
        raise BadCursorError(
            "cursor is not one this API issued; pass next_cursor from the previous page"
        )
    if raw["f"] != fingerprint:
        raise BadCursorError(
            "cursor was issued for another dataset or other filters (start, end, region, "
            "bbox); repeat those filters, or start again without a cursor"
        )
    return _After(raw["t"], raw["id"])
