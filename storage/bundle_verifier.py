"""Checking an evidence bundle with no server and no store (ADR 21): the verifier's own pass
(LogVerifier) runs over the bundled events, started from the start head's frontier instead of
the empty tree, and then the bundle's claims are held against what the pass verified.

What differs from a pass over the whole log, and why:
- A chain's first batch in the bundle links to the head before the range, which the bundle
  does not hold; that head is taken from the batch's own previous hash and totals, which the
  signed root covers. Every later batch must link as in a full pass.
- A snapshot published in the range is checked against its bundled manifest (digest and
  identity) and, when bundled, its files; its chain heads and row count need the chains
  before the range and are left to a full pass.
"""

from __future__ import annotations

import binascii
import json
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from hmac import compare_digest
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eventsourcing.persistence import Mapper, Notification

from domain.errors import DomainError
from domain.ingest import BatchFacts, ChainHead
from domain.merkle import verify_consistency
from domain.snapshot import SnapshotLog
from domain.tree_head_log import TreeHeadLog
from storage.errors import ObjectNotFoundError, ObjectStoreError, StorageError
from storage.evidence_bundle import DESCRIPTION, EVENTS, OBJECTS, mapper, read_event_line
from storage.log_verifier import LogVerifier, VerifyReport, _ChainHistory
from storage.object_store import ObjectInfo
from storage.tree_heads import HEAD_TOPIC


class BundleUnreadableError(StorageError):
    """The file is not a zip or lacks a bundle's description: not a bundle at all."""


@dataclass(frozen=True, slots=True)
class BundleFailure:
    item: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class BundleReport:
    """The bundle's range, the verifier's pass over its events, and the first failure."""

    start: int
    end: int
    first_position: int
    last_position: int
    verified: VerifyReport | None
    failure: BundleFailure | None

    @property
    def ok(self) -> bool:
        return self.failure is None

    def as_dict(self) -> dict[str, Any]:
        failure = self.failure
        return {
            "ok": self.ok,
            "from": self.start,
            "to": self.end,
            "first_position": self.first_position,
            "last_position": self.last_position,
            "verified": None if self.verified is None else self.verified.as_dict(),
            "failure": None
            if failure is None
            else {"item": failure.item, "reason": failure.reason, "message": failure.message},
        }


class _BadError(Exception):
    def __init__(self, item: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.failure = BundleFailure(item, reason, message)


class _Events:
    """The bundled events, read from the zip line by line, in log order, and served as a
    recorder serves notifications to a pass that only moves forward: memory stays bounded
    however many events the bundle holds."""

    def __init__(self, bundle: zipfile.ZipFile) -> None:
        self._bundle = bundle
        self._stream: Iterator[Notification] | None = None
        self._pending: Notification | None = None

    def scan(self, wanted: set[int]) -> tuple[int | None, dict[int, Notification]]:
        """One pass checking every line: the first position, and the events at ``wanted``."""
        first, found = None, {}
        for notification in _read_events(self._bundle):
            first = notification.id if first is None else first
            if notification.id in wanted:
                found[notification.id] = notification
        return first, found

    def select_notifications(
        self, start: int | None, limit: int, stop: int | None = None
    ) -> Sequence[Notification]:
        if self._stream is None:
            self._stream = _read_events(self._bundle)
        page: list[Notification] = []
        while len(page) < limit:
            notification, self._pending = self._pending or next(self._stream, None), None
            if notification is None:
                break
            if notification.id < (start or 1):
                continue
            if stop is not None and notification.id > stop:
                self._pending = notification
                break
            page.append(notification)
        return page


@dataclass(frozen=True, slots=True)
class _BundleLog:
    recorder: _Events
    mapper: Mapper[UUID]


class _BundleObjects:
    """The bundled manifests and files, read-only, under their object keys."""

    def __init__(self, bundle: zipfile.ZipFile) -> None:
        self._bundle = bundle
        self._keys = {n.removeprefix(OBJECTS) for n in bundle.namelist() if n.startswith(OBJECTS)}

    def has(self, key: str) -> bool:
        return key in self._keys

    def put(
        self, key: str, data: bytes, *, content_type: str = "application/octet-stream"
    ) -> ObjectInfo:
        raise ObjectStoreError("an evidence bundle is read-only")

    def get(self, key: str) -> bytes:
        if key not in self._keys:
            raise ObjectNotFoundError(f"{OBJECTS}{key} is not in the bundle")
        return self._bundle.read(OBJECTS + key)

    def stat(self, key: str) -> ObjectInfo:
        raise ObjectStoreError("an evidence bundle lists no object info")

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        raise ObjectStoreError("an evidence bundle lists no object info")

    def delete(self, key: str) -> None:
        raise ObjectStoreError("an evidence bundle is read-only")

    def url_for(self, key: str, expires_seconds: int = 3600) -> str:
        raise ObjectStoreError("an evidence bundle has no object URLs")


class _RangeVerifier(LogVerifier):
    """The verifier's pass over a bundled range (see the module's docstring)."""

    def __init__(
        self, log: _BundleLog, objects: _BundleObjects, key: Ed25519PublicKey | None
    ) -> None:
        super().__init__(log, objects, key)
        self._bundled = objects

    def start_at(self, head: TreeHeadLog.Recorded) -> None:
        """Go on from the tree of ``head``, as if its leaves had been read."""
        self._frontier = head.frontier()
        self._frontier_position = self._position = head.last_position

    @property
    def last_head(self) -> TreeHeadLog.Recorded | None:
        return self._last_head

    def _check_batch(self, position: int, facts: BatchFacts) -> None:
        if facts.chain_key not in self._chains and facts.version > 1:
            # The bundle starts mid-chain: the first batch says where its chain stood.
            before = ChainHead(
                UUID(bytes=facts.chain_key),
                facts.version - 1,
                facts.previous_hash,
                facts.accepted_total - facts.record_count,
                facts.rejected_total - facts.rejection_count,
            )
            self._chains[facts.chain_key] = _ChainHistory(facts.dataset_id, facts.partition, before)
        super()._check_batch(position, facts)

    def _check_snapshot(self, position: int, event: SnapshotLog.Published) -> None:
        where = f"snapshot {event.snapshot_id} of {event.dataset_id}"
        manifest = self._manifest(where, event)
        if all(self._bundled.has(file.key) for file in manifest.files):
            self._check_files(where, manifest)
        self._snapshots += 1


def verify_bundle(path: Path, key: Ed25519PublicKey | None) -> BundleReport:
    """Check the bundle at ``path`` under ``key``; BundleUnreadableError if it is no bundle."""
    try:
        bundle = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        raise BundleUnreadableError(f"{path} is not a readable zip: {error}") from None
    with bundle:
        try:
            description = json.loads(bundle.read(DESCRIPTION))
            start, end = int(description["from"]), int(description["to"])
            first = int(description.get("first_position", 0))
            last = int(description.get("last_position", 0))
        except (KeyError, ValueError, TypeError, AttributeError, zipfile.BadZipFile) as error:
            raise BundleUnreadableError(
                f"{path} is not an evidence bundle ({DESCRIPTION}: {error})"
            ) from None
        verified = None
        try:
            verified = _verify(bundle, description, start, end, key)
            failure = None
        except _BadError as bad:
            failure = bad.failure
        except _FailedError as failed:
            verified, failure = failed.report, failed.failure
        except zipfile.BadZipFile as error:
            failure = BundleFailure("zip", "bundle_corrupt", f"a member is damaged: {error}")
    return BundleReport(start, end, first, last, verified, failure)


class _FailedError(Exception):
    def __init__(self, report: VerifyReport, failure: BundleFailure) -> None:
        self.report, self.failure = report, failure


def _verify(
    bundle: zipfile.ZipFile,
    description: dict[str, Any],
    start: int,
    end: int,
    key: Ed25519PublicKey | None,
) -> VerifyReport:
    events = _Events(bundle)
    log = _BundleLog(events, mapper())
    verifier = _RangeVerifier(log, _BundleObjects(bundle), key)
    start_at = _head_position(description.get("start_head"), "start head")
    covering_at = _head_position(description.get("covering_head"), "covering head")
    # A first pass checks every line and finds the two heads, so the second holds no event.
    first, found = events.scan({p for p in (start_at, covering_at) if p is not None})
    start_head = _bundled_head(log.mapper, found, start_at, "start head")
    if start_head is not None:
        if start_head.last_position >= start:
            raise _BadError(
                "start head", "bundle_range", f"the start head covers log position {start}"
            )
        if first is not None and first <= start_head.last_position:
            # The pass goes on from the start head's tree: events inside it would go unread.
            raise _BadError(
                f"log position {first}",
                "bundle_range",
                f"the event is in the start head's tree (up to {start_head.last_position})",
            )
        verifier.start_at(start_head)
    covering = _bundled_head(log.mapper, found, covering_at, "covering head")
    if covering is None or covering.last_position < end:
        raise _BadError(
            "covering head", "bundle_range", f"no bundled head covers log position {end}"
        )
    report = verifier.run()
    if report.failure is not None:
        failure = report.failure
        raise _FailedError(
            report,
            BundleFailure(f"log position {failure.position}", failure.reason, failure.message),
        )
    last_head = verifier.last_head
    if last_head is None or last_head.originator_version < covering.originator_version:
        raise _FailedError(
            report,
            BundleFailure(
                "covering head",
                "bundle_range",
                f"the events do not reach the head of size {covering.tree_size}",
            ),
        )
    if start_head is not None:
        _check_consistency(description, start_head, covering)
    return report


def _read_events(bundle: zipfile.ZipFile) -> Iterator[Notification]:
    try:
        opened = bundle.open(EVENTS)
    except KeyError:
        raise _BadError(EVENTS, "bundle_events", f"the bundle holds no {EVENTS}") from None
    previous: int | None = None
    with opened:
        for number, line in enumerate(opened, 1):
            item = f"{EVENTS} line {number}"
            try:
                notification = read_event_line(line)
            except (ValueError, KeyError, TypeError, binascii.Error) as error:
                raise _BadError(item, "bundle_event", f"not a stored event: {error}") from None
            if previous is not None and notification.id <= previous:
                raise _BadError(
                    f"log position {notification.id}",
                    "bundle_order",
                    f"{item} is not after log position {previous}",
                )
            previous = notification.id
            yield notification


def _head_position(summary: Any, item: str) -> int | None:
    if summary is None:
        return None
    try:
        return int(summary["position"])
    except (KeyError, ValueError, TypeError):
        raise _BadError(item, "bundle_head", f"the {item} names no log position") from None


def _bundled_head(
    codec: Mapper[UUID], found: dict[int, Notification], position: int | None, item: str
) -> TreeHeadLog.Recorded | None:
    """The head the description names, decoded from the bundled event at its position (so
    it is checked, signature and all, when the pass reaches it)."""
    if position is None:
        return None
    notification = found.get(position)
    if notification is None or notification.topic != HEAD_TOPIC:
        raise _BadError(item, "bundle_head", f"log position {position} holds no tree head")
    where = f"log position {position}"
    try:
        head = codec.to_domain_event(notification)
    except Exception as error:  # tampered bytes: a finding, reported by name
        raise _BadError(where, "bundle_head", f"the {item} cannot be decoded: {error}") from None
    if not isinstance(head, TreeHeadLog.Recorded):
        raise _BadError(where, "bundle_head", f"the {item} is not a tree head")
    try:
        head.frontier()
        if not (type(head.last_position) is int and type(head.tree_size) is int):
            raise TypeError("its size and last position are not integers")
        if type(head.root) is not bytes:
            raise TypeError("its root is not bytes")
    except (DomainError, TypeError, ValueError, AttributeError) as error:
        raise _BadError(where, "bundle_head", f"the {item}'s frontier: {error}") from None
    return head


def _check_consistency(
    description: dict[str, Any], first: TreeHeadLog.Recorded, second: TreeHeadLog.Recorded
) -> None:
    if first.tree_size == second.tree_size:
        return
    try:
        path = [bytes.fromhex(node) for node in description["consistency_proof"]]
        verify_consistency(first.tree_size, second.tree_size, first.root, second.root, path)
    except (KeyError, ValueError, TypeError, DomainError) as error:
        raise _BadError(
            "consistency proof",
            "consistency_proof",
            f"the proof from the head of size {first.tree_size} to the head of size "
            f"{second.tree_size} does not verify: {error}",
        ) from None
    if not compare_digest(first.frontier().root(), first.root):
        raise _BadError(
            "start head", "head_frontier", "the start head's frontier is not its tree's"
        )
