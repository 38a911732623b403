"""Replaying the event log into a sandbox: the store as it was at one log position.

Every event up to the position is copied, in log order and at its own log position, into a
fresh embedded data dir (``events.sqlite`` and ``objects/``), so everything that reads the
store (catalog, agreements, subscriptions, access and delivery logs, ingest chains, tree heads,
snapshot publications) reads it as it was. The record index is rebuilt from the batches, the
snapshot builder's position is set where the last copied publication left it, and the objects
of the snapshots published up to the position are copied. Kafka positions are not events and
are not replayed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import IntegrityError, Notification, StoredEvent, Tracking
from eventsourcing.sqlite import SQLiteCursor
from eventsourcing.utils import get_topic

from domain.ingest import IngestChain
from domain.snapshot import Manifest, SnapshotLog
from storage.errors import ReplayError
from storage.ledger import LedgerApplication
from storage.object_store import ObjectStore
from storage.object_store_local import LocalObjectStore
from storage.recorders import RecordIndexEntry, SQLiteLedgerRecorder, index_entry
from storage.snapshots import BUILDER_TRACKING

SANDBOX_EVENTS = "events.sqlite"
SANDBOX_OBJECTS = "objects"
_PAGE = 500
_BATCH_TOPIC = get_topic(IngestChain.BatchRecorded)
_PUBLISHED_TOPIC = get_topic(SnapshotLog.Published)


class ReplayLedger(LedgerApplication):
    """The store a replay reads."""


class SandboxRecorder(SQLiteLedgerRecorder):
    """Inserts events at the log positions they had in the store they came from.

    A PostgreSQL log can have gaps (a rolled-back insert spends its sequence number) and
    SQLite would close them: positions are part of what is replayed, since snapshot ids, tree
    heads and Merkle leaves name them.
    """

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions: Sequence[int] | None = kwargs.pop("positions", None)
        if positions is None:
            return super()._insert_events(c, stored_events, **kwargs)
        statement = (
            f"INSERT INTO {self.events_table_name} "  # noqa: S608 - the recorder's own table
            "(rowid, originator_id, originator_version, topic, state) VALUES (?,?,?,?,?)"
        )
        for event, position in zip(stored_events, positions, strict=True):
            originator = event.originator_id
            c.execute(
                statement,
                (
                    position,
                    originator.hex if isinstance(originator, UUID) else originator,
                    event.originator_version,
                    event.topic,
                    event.state,
                ),
            )
        # No events left to insert: the record index and tracking, in this transaction.
        super()._insert_events(c, [], **kwargs)
        return list(positions)


class _SandboxLedger(LedgerApplication):
    """The sandbox's store, written through SandboxRecorder."""

    def __init__(self, event_store_url: str) -> None:
        super().__init__(event_store_url, PROCESS_RECORDER_TOPIC=get_topic(SandboxRecorder))

    @property
    def sandbox_recorder(self) -> SandboxRecorder:
        assert isinstance(self.recorder, SandboxRecorder)
        return self.recorder


@dataclass(frozen=True)
class ReplayReport:
    """What a replay copied."""

    events: int
    last_position: int
    snapshots: int
    objects: int


def parse_until(text: str) -> int | datetime:
    """A log position (digits) or an ISO-8601 time with its UTC offset; ReplayError otherwise."""
    stripped = text.strip()
    if stripped.isdigit():
        try:
            return int(stripped)
        except ValueError:  # more digits than int() reads: no log is that long
            raise ReplayError(f"--until {text!r} is not a log position") from None
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        raise ReplayError(
            f"--until {text!r} is neither a log position nor an ISO-8601 time"
        ) from None
    if moment.tzinfo is None:
        raise ReplayError(
            f"--until {text!r} names no UTC offset: add one, e.g. {stripped}Z or {stripped}+08:00"
        )
    return moment


def position_at(ledger: LedgerApplication, moment: datetime) -> int:
    """The end of the longest prefix of the log with no event stamped after ``moment``.

    Events are stamped before they are stored and stored in log order, so an event stamped
    after ``moment`` and every event after it were not yet stored at ``moment``."""
    last = 0
    start = 1
    while page := ledger.recorder.select_notifications(start, _PAGE):
        for notification in page:
            try:
                event = ledger.mapper.to_domain_event(notification)
            except Exception:  # tampered bytes: name the position instead
                event = None
            if not isinstance(event, DomainEvent):
                raise ReplayError(
                    f"the event at log position {notification.id} does not decode, so its time "
                    "is unknown: replay to a log position instead"
                )
            if event.timestamp > moment:
                if last == 0:
                    raise ReplayError(f"the log holds no event at or before {moment.isoformat()}")
                return last
            last = notification.id
        start = page[-1].id + 1
    if last == 0:
        raise ReplayError("the log is empty: there is nothing to replay")
    return last


def check_position(ledger: LedgerApplication, position: int) -> None:
    """ReplayError unless an event is stored at ``position``."""
    newest = ledger.position()
    if position < 1 or position > newest:
        raise ReplayError(
            f"log position {position} is beyond the log, which ends at {newest}"
            if position > newest
            else "log positions start at 1"
        )
    if not ledger.recorder.select_notifications(position, 1, stop=position):
        raise ReplayError(f"no event is stored at log position {position}")


def prepare_sandbox(directory: Path) -> None:
    """``directory`` made, or ReplayError when it holds anything: a replay never merges."""
    try:
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            raise ReplayError(f"the sandbox {directory} is not an empty directory")
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ReplayError(f"cannot make the sandbox {directory}: {error.strerror}") from None


def sandbox_event_store_url(directory: Path) -> str:
    return f"sqlite:///{directory.resolve() / SANDBOX_EVENTS}"


class LogReplay:
    """Copies a prefix of one store's log, and its snapshot objects, into a sandbox."""

    def __init__(
        self,
        source: LedgerApplication,
        objects: ObjectStore,
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self.source = source
        self.objects = objects
        self.on_progress = on_progress

    def into(self, directory: Path, until: int) -> ReplayReport:
        """Replay every event up to and including log position ``until`` into ``directory``,
        which must be empty or absent."""
        check_position(self.source, until)
        prepare_sandbox(directory)
        sandbox = _SandboxLedger(sandbox_event_store_url(directory))
        sandbox_objects = LocalObjectStore(directory / SANDBOX_OBJECTS)
        events = snapshots = objects = built_up_to = 0
        try:
            start = 1
            while start <= until:
                page = self.source.recorder.select_notifications(start, _PAGE, stop=until)
                if not page:
                    break
                published = self._copy_page(sandbox, page)
                for event in published:
                    objects += self._copy_objects(event, sandbox_objects)
                    built_up_to = max(built_up_to, event.last_position)
                snapshots += len(published)
                events += len(page)
                start = page[-1].id + 1
                if self.on_progress is not None:
                    self.on_progress(page[-1].id)
            if built_up_to:
                # Where the builder stood after its last publication; a builder run on the
                # sandbox snapshots what follows.
                sandbox.recorder.insert_events([], tracking=Tracking(BUILDER_TRACKING, built_up_to))
        finally:
            sandbox.close()
        return ReplayReport(events, until, snapshots, objects)

    def _copy_page(
        self, sandbox: _SandboxLedger, page: Sequence[Notification]
    ) -> list[SnapshotLog.Published]:
        """Insert one page in one transaction; the publications it holds."""
        index: list[RecordIndexEntry] = []
        published = []
        for notification in page:
            if notification.topic == _BATCH_TOPIC:
                record_ids = self._record_ids(notification)
                if record_ids is not None:
                    index.append(
                        index_entry(
                            UUID(str(notification.originator_id)),
                            notification.originator_version,
                            record_ids,
                        )
                    )
            elif notification.topic == _PUBLISHED_TOPIC:
                event = self._decoded(notification)
                if isinstance(event, SnapshotLog.Published):
                    published.append(event)
        stored = [
            StoredEvent(n.originator_id, n.originator_version, n.topic, n.state) for n in page
        ]
        try:
            sandbox.sandbox_recorder.insert_events(
                stored, positions=[n.id for n in page], record_index=index
            )
        except IntegrityError as error:  # a record id in two batches: a store tampered with
            raise ReplayError(
                f"the events at log positions {page[0].id}-{page[-1].id} cannot be stored in "
                f"the sandbox: {error}"
            ) from None
        return published

    def _decoded(self, notification: Notification) -> object | None:
        """The event, or None when its stored state does not decode.

        A replay copies what is stored, tampered or not; `audit verify` on the sandbox then
        finds the tampering where it finds it in the store."""
        try:
            return self.source.mapper.to_domain_event(notification)
        except Exception:  # any failure of tampered bytes is the verifier's finding
            return None

    def _record_ids(self, notification: Notification) -> list[str] | None:
        """The ids of the records a batch accepted (for the record index), if it decodes."""
        batch = self._decoded(notification)
        if not isinstance(batch, IngestChain.BatchRecorded):
            return None
        try:
            return [str(record[0]) for record in batch.accepted()]
        except Exception:  # as above
            return None

    def _copy_objects(self, event: SnapshotLog.Published, sandbox_objects: ObjectStore) -> int:
        """The manifest of a publication and the files it names, as stored."""
        data = self.objects.get(event.manifest_key)
        sandbox_objects.put(event.manifest_key, data, content_type="application/json")
        manifest = Manifest.from_json(data)
        for file in manifest.files:
            sandbox_objects.put(file.key, self.objects.get(file.key))
        return 1 + len(manifest.files)
