"""Rebuilding a published snapshot from the events and checking it bit for bit.

The builder writes a pure function of the batches in the snapshot's range (ADR 5), so the
rebuild runs the builder itself over the published range, with the dataset's definition as it
was when the snapshot was published, into a scratch object store; then every file's SHA-256 is
compared with the published manifest's and the rebuilt manifest's with the one the publication
event recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from domain.catalog import Dataset
from domain.dataset import DatasetDefinition
from domain.ingest import IngestChain
from domain.snapshot import Manifest, SnapshotLog
from storage.catalog import Catalog
from storage.errors import UnknownDatasetError, UnknownPublishedSnapshotError
from storage.ledger import LedgerApplication
from storage.object_store import ObjectStore
from storage.snapshots import SnapshotBuilder, SnapshotLedger

_PAGE = 500
_PUBLISHED_TOPIC = get_topic(SnapshotLog.Published)
_BATCH_TOPIC = get_topic(IngestChain.BatchRecorded)
# The @event classes are made at class creation, out of mypy's sight: named by their topics.
_DATASET_TOPICS = [f"{get_topic(Dataset)}.Registered", f"{get_topic(Dataset)}.Revised"]


@dataclass(frozen=True)
class Publication:
    """A snapshot's publication event and its log position."""

    position: int
    event: SnapshotLog.Published


@dataclass(frozen=True)
class RebuildReport:
    """The outcome of one rebuild: ``mismatch`` names the first object that differs."""

    dataset_id: str
    snapshot_id: str
    position: int
    files: int
    rows: int
    manifest_sha256: str
    mismatch: str | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.mismatch is None

    def as_dict(self) -> dict[str, object]:
        return {
            "dataset_id": self.dataset_id,
            "snapshot_id": self.snapshot_id,
            "position": self.position,
            "files": self.files,
            "rows": self.rows,
            "manifest_sha256": self.manifest_sha256,
            "ok": self.ok,
            "mismatch": self.mismatch,
            "detail": self.detail,
        }


def _notifications(
    ledger: LedgerApplication, topics: list[str], stop: int | None = None
) -> Iterator[tuple[int, object]]:
    start = 1
    while page := ledger.recorder.select_notifications(start, _PAGE, stop=stop, topics=topics):
        for notification in page:
            yield notification.id, ledger.mapper.to_domain_event(notification)
        start = page[-1].id + 1


def publications(ledger: LedgerApplication, stop: int | None = None) -> Iterator[Publication]:
    """Every snapshot publication up to log position ``stop``, in log order."""
    for position, event in _notifications(ledger, [_PUBLISHED_TOPIC], stop):
        assert isinstance(event, SnapshotLog.Published)
        yield Publication(position, event)


def find_publication(
    ledger: LedgerApplication, snapshot_id: str, dataset_id: str | None = None
) -> Publication:
    """The one publication of ``snapshot_id`` (of ``dataset_id`` when given)."""
    found = [
        p
        for p in publications(ledger)
        if p.event.snapshot_id == snapshot_id
        and (dataset_id is None or p.event.dataset_id == dataset_id)
    ]
    of = f" of dataset {dataset_id!r}" if dataset_id else ""
    if not found:
        raise UnknownPublishedSnapshotError(f"no snapshot {snapshot_id!r}{of} is published")
    if len(found) > 1:
        datasets = ", ".join(sorted(p.event.dataset_id for p in found))
        raise UnknownPublishedSnapshotError(
            f"snapshot {snapshot_id!r} was published for several datasets ({datasets}): "
            "name one with --dataset"
        )
    return found[0]


def definition_as_of(catalog: Catalog, dataset_id: str, position: int) -> DatasetDefinition:
    """The dataset's definition as the catalog held it at log position ``position``."""
    aggregate_id = Dataset.create_id(dataset_id)
    version = sum(
        1
        for _, event in _notifications(catalog, _DATASET_TOPICS, position)
        if isinstance(event, Dataset.Event) and event.originator_id == aggregate_id
    )
    if version == 0:
        raise UnknownDatasetError(
            f"no dataset {dataset_id!r} was registered by log position {position}"
        )
    dataset: Dataset = catalog.repository.get(aggregate_id, version=version)
    return DatasetDefinition.from_dict(dataset.definition)


class SnapshotRebuild:
    """Rebuilds published snapshots into a scratch store and compares them with the published."""

    def __init__(
        self,
        ledger: SnapshotLedger,
        catalog: Catalog,
        published: ObjectStore,
        scratch: ObjectStore,
    ) -> None:
        self.ledger = ledger
        self.catalog = catalog
        self.published = published
        self.builder = SnapshotBuilder(ledger, catalog, scratch)

    def run(self, snapshot_id: str, dataset_id: str | None = None) -> RebuildReport:
        return self.check(find_publication(self.ledger, snapshot_id, dataset_id))

    def check(self, publication: Publication) -> RebuildReport:
        """Rebuild one publication's snapshot; the first object whose bytes differ, if any."""
        event = publication.event
        dataset = definition_as_of(self.catalog, event.dataset_id, publication.position)
        try:
            rebuilt = self.builder.build(dataset, event.first_position, event.last_position)
        except Exception as error:  # tampered bytes fail however they fail: find which event
            return self._undecodable(publication, error)
        report = RebuildReport(
            event.dataset_id,
            event.snapshot_id,
            publication.position,
            len(rebuilt.files),
            rebuilt.row_count,
            rebuilt.sha256(),
        )
        published_bytes = self.published.get(event.manifest_key)
        if hashlib.sha256(published_bytes).hexdigest() != event.manifest_sha256:
            return _differs(
                report,
                event.manifest_key,
                "the published manifest is not the one its publication event names",
            )
        published = Manifest.from_json(published_bytes)
        rebuilt_files = {f.key: f for f in rebuilt.files}
        for file in published.files:
            mine = rebuilt_files.pop(file.key, None)
            if mine is None:
                return _differs(report, file.key, "the rebuild has no such file")
            if mine.sha256 != file.sha256:
                return _differs(
                    report, file.key, f"rebuilt sha256 {mine.sha256}, published {file.sha256}"
                )
        if rebuilt_files:
            return _differs(report, min(rebuilt_files), "the published manifest has no such file")
        if report.manifest_sha256 != event.manifest_sha256:
            return _differs(
                report,
                event.manifest_key,
                f"rebuilt sha256 {report.manifest_sha256}, published {event.manifest_sha256}",
            )
        return report

    def _undecodable(self, publication: Publication, error: Exception) -> RebuildReport:
        """The first batch of the range whose records do not decode, named by position."""
        event = publication.event
        where, detail = (
            f"log positions {event.first_position}-{event.last_position}",
            f"the events do not rebuild: {_described(error)}",
        )
        batches = _batch_notifications(self.ledger, event.first_position, event.last_position)
        for notification in batches:
            try:
                batch = self.ledger.mapper.to_domain_event(notification)
                if isinstance(batch, IngestChain.BatchRecorded):
                    batch.accepted()
            except Exception as found:  # the same as above, for one event
                where = f"log position {notification.id}"
                detail = f"the batch does not decode: {_described(found)}"
                break
        failed = RebuildReport(event.dataset_id, event.snapshot_id, publication.position, 0, 0, "")
        return _differs(failed, where, detail)


def _batch_notifications(
    ledger: LedgerApplication, first: int, last: int
) -> Iterator[Notification]:
    start = first
    while page := ledger.recorder.select_notifications(
        start, _PAGE, stop=last, topics=[_BATCH_TOPIC]
    ):
        yield from page
        start = page[-1].id + 1


def _described(error: Exception) -> str:
    """An error on one line, whatever its message holds."""
    return " ".join(f"{type(error).__name__}: {error}".split())


def _differs(report: RebuildReport, key: str, detail: str) -> RebuildReport:
    return RebuildReport(
        report.dataset_id,
        report.snapshot_id,
        report.position,
        report.files,
        report.rows,
        report.manifest_sha256,
        key,
        detail,
    )
