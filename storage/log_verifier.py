"""Verifying a stored platform offline: one pass over the notification log, in order, that
checks every ingest chain, every signed tree head against the Merkle tree recomputed from the
events, and every published snapshot against its manifest, its files and the events (ADR 18).

The pass stops at the first failure and names its log position. What it keeps in memory is
bounded by the platform's cadence, not by the log: the Merkle frontier at the last verified
head plus the leaf hashes since (40 bytes a leaf), and per chain its head plus the heads since
the end of the last snapshot's range (a snapshot is checked against the chain heads as of the
end of its range, which the log passed before the snapshot was published).
"""

from __future__ import annotations

import copy
import hashlib
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from hmac import compare_digest
from typing import Any, Protocol
from uuid import UUID

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eventsourcing.persistence import Mapper, Notification

from domain.errors import DomainError
from domain.ingest import BatchFacts, ChainHead, link_fault
from domain.merkle import HASH_SIZE, MerkleFrontier
from domain.snapshot import Manifest, SnapshotLog, snapshot_id_for
from domain.tree_head import verify_tree_head
from domain.tree_head_log import TreeHeadLog
from storage.errors import CorruptObjectError, ObjectStoreError
from storage.examining_pool import ExaminingPool
from storage.head_timestamps import TimestampError, check_token
from storage.log_examination import (
    BATCH,
    BATCH_TOPIC,
    FOUND,
    IN_ORDER,
    PUBLISHED_TOPIC,
    AuditLedger,
    Examined,
    FindingError,
    decoded,
    examine,
    malformed,
)
from storage.object_store import ObjectStore
from storage.tree_heads import HEAD_TOPIC

__all__ = ["AuditLedger", "KeptHead", "LogVerifier", "VerifyFailure", "VerifyReport"]

_PAGE = 1000


@dataclass(frozen=True, slots=True)
class KeptHead:
    """A tree head an auditor kept from an earlier look at the log: the log must still hold
    at least ``tree_size`` events, and the first ``tree_size`` must still have this root."""

    tree_size: int
    root: bytes

    @classmethod
    def parse(cls, text: str) -> KeptHead:
        """``SIZE:ROOT``, the root in hex as `baylink audit head` prints it."""
        size, _, root = text.partition(":")
        try:
            kept = cls(int(size), bytes.fromhex(root))
        except ValueError:
            raise ValueError(f"a kept head is SIZE:ROOT (hex), not {text!r:.100}") from None
        if kept.tree_size < 1 or len(kept.root) != HASH_SIZE:
            raise ValueError(
                f"a kept head has a size from 1 and a {HASH_SIZE}-byte root, not {text!r:.100}"
            )
        return kept


@dataclass(frozen=True, slots=True)
class VerifyFailure:
    """The first thing found wrong: where in the log, a stable reason code, and a sentence."""

    position: int
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What one pass checked, and the first failure if any."""

    events: int
    last_position: int
    batches: int
    chains: int
    tree_heads: int
    snapshots: int
    unsigned_events: int
    failure: VerifyFailure | None
    # None: no head was kept; True once the log's first events matched it.
    kept_head_matched: bool | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    def as_dict(self) -> dict[str, Any]:
        failure = self.failure
        return {
            "ok": self.ok,
            "events": self.events,
            "last_position": self.last_position,
            "batches": self.batches,
            "chains": self.chains,
            "tree_heads": self.tree_heads,
            "snapshots": self.snapshots,
            "unsigned_events": self.unsigned_events,
            "kept_head_matched": self.kept_head_matched,
            "failure": None
            if failure is None
            else {
                "position": failure.position,
                "reason": failure.reason,
                "message": failure.message,
            },
        }


# Where a chain stands: its start, or the facts of its last batch (version, hash, totals).
_Head = ChainHead | BatchFacts


@dataclass(slots=True)
class _ChainHistory:
    """A chain's head, and its heads at the log positions since the last snapshot's range."""

    dataset_id: str
    partition: int
    head: _Head
    positions: array[int] = field(default_factory=lambda: array("q"))
    heads: list[_Head] = field(default_factory=list)

    def append(self, position: int, head: _Head) -> None:
        self.head = head
        self.positions.append(position)
        self.heads.append(head)

    def as_of(self, position: int) -> _Head | None:
        """The chain's head once the log reached ``position`` (None: no batch yet)."""
        index = bisect_right(self.positions, position)
        return self.heads[index - 1] if index else None

    def forget_before(self, position: int) -> None:
        """Keep only what ``as_of`` needs for ``position`` and later."""
        index = bisect_right(self.positions, position) - 1
        if index > 0:
            del self.positions[:index]
            del self.heads[:index]


class NotificationSource(Protocol):
    def select_notifications(
        self, start: int | None, limit: int, stop: int | None = None
    ) -> Sequence[Notification]: ...


class LogSource(Protocol):
    """What the verifier reads: a store's ledger, or the events of an evidence bundle."""

    @property
    def recorder(self) -> NotificationSource: ...

    @property
    def mapper(self) -> Mapper[UUID]: ...


class LogVerifier:
    """One verifying pass over a store's log; ``on_progress`` is told the log position reached
    (every thousand events and at the end). With an ``ExaminingPool`` over the same store,
    worker processes examine events ahead of the pass and it links their findings in order."""

    def __init__(
        self,
        ledger: LogSource,
        objects: ObjectStore,
        public_key: Ed25519PublicKey | None,
        on_progress: Callable[[int], None] | None = None,
        tsa_anchors: Sequence[x509.Certificate] = (),
        require_timestamps: bool = False,
        kept_head: KeptHead | None = None,
        pool: ExaminingPool | None = None,
    ) -> None:
        self._ledger = ledger
        self._pool = pool
        # Heads' RFC 3161 timestamps must chain to these (ADR 22).
        self._tsa_anchors = list(tsa_anchors)
        self._require_timestamps = require_timestamps
        self._kept_head = kept_head
        self._kept_head_matched = False
        self._objects = objects
        self._public_key = public_key
        self._on_progress = on_progress
        self._position = 0
        self._events = 0
        self._chains: dict[bytes, _ChainHistory] = {}  # by chain id bytes
        self._batches = 0
        # Merkle log: the frontier at the last verified head and the leaves read since.
        self._frontier = MerkleFrontier()
        self._frontier_position = 0
        self._leaf_positions: array[int] = array("q")
        self._leaf_hashes = bytearray()
        self._heads = 0
        self._last_head: TreeHeadLog.Recorded | None = None
        # Snapshots: the last range published, and how many were checked.
        self._snapshot_range: tuple[int, int] = (0, 0)
        self._snapshots = 0
        self._published_heads: dict[str, dict[int, tuple[int, str]]] = {}

    def run(self, until: int | None = None) -> VerifyReport:
        """Verify from where the last run stopped (the log's start at first) to the log's end,
        or through position ``until``; the report counts everything verified so far."""
        failure = None
        for examined in self._examined(until):
            self._position = examined[0]
            self._events += 1
            try:
                self._link(examined)
            except FindingError as failed:
                failure = VerifyFailure(self._position, failed.reason, failed.message)
                break
            if self._on_progress is not None and self._events % _PAGE == 0:
                self._on_progress(self._position)
        kept = self._kept_head
        if failure is None and until is None and kept and not self._kept_head_matched:
            failure = VerifyFailure(
                self._position,
                "kept_head_beyond_log",
                f"the log holds {self._leaf_count()} events, fewer than the {kept.tree_size} "
                "under the head the auditor kept: events were removed from its end",
            )
        if self._on_progress is not None:
            self._on_progress(self._position)
        return VerifyReport(
            events=self._events,
            last_position=self._position,
            batches=self._batches,
            chains=len(self._chains),
            tree_heads=self._heads,
            snapshots=self._snapshots,
            unsigned_events=len(self._leaf_positions),
            failure=failure,
            kept_head_matched=None if kept is None else self._kept_head_matched,
        )

    def fork(self) -> LogVerifier:
        """A verifier that goes on from this one's position with a copy of what it knows, so
        one verified prefix can be continued over different suffixes."""
        forked = copy.copy(self)
        # Chain heads, frontiers, events and tuples are immutable: only containers are copied.
        forked._chains = {
            chain_id: _ChainHistory(
                chain.dataset_id,
                chain.partition,
                chain.head,
                array("q", chain.positions),
                list(chain.heads),
            )
            for chain_id, chain in self._chains.items()
        }
        forked._leaf_positions = array("q", self._leaf_positions)
        forked._leaf_hashes = bytearray(self._leaf_hashes)
        forked._published_heads = {
            dataset: dict(heads) for dataset, heads in self._published_heads.items()
        }
        return forked

    def _examined(self, until: int | None) -> Iterator[Examined]:
        start = self._position + 1
        if self._pool is not None:
            while (stop := self._pool.position() if until is None else until) >= start:
                yield from self._pool.examined(start, stop)
                start = stop + 1
                if until is not None:
                    return
            return
        mapper = self._ledger.mapper
        while until is None or start <= until:
            page = self._ledger.recorder.select_notifications(start, _PAGE, stop=until)
            if not page:
                return
            for notification in page:
                yield examine(notification, mapper)
            start = page[-1].id + 1

    def _link(self, examined: Examined) -> None:
        """Check an examined event in log order: what it says against what came before."""
        position, leaf, kind, rest = examined
        if kind == FOUND:
            raise FindingError(*rest)
        try:
            if kind == BATCH:
                self._check_batch(position, rest)
            elif kind == IN_ORDER:
                self._check_in_order(rest)
        except (TypeError, ValueError, AttributeError, KeyError) as error:
            topic = rest.topic if kind == IN_ORDER else BATCH_TOPIC
            raise FindingError(*malformed(topic, error)) from None
        # A head covers only earlier positions, so this leaf joins after the head is checked.
        self._leaf_positions.append(position)
        self._leaf_hashes += leaf
        kept = self._kept_head
        if kept is not None and self._leaf_count() == kept.tree_size:
            if self._frontier_through(position).root() != kept.root:
                raise FindingError(
                    "kept_head_root",
                    f"the first {kept.tree_size} events, up to log position {position}, "
                    "do not have the root of the head the auditor kept: history was rewritten",
                )
            self._kept_head_matched = True

    def _leaf_count(self) -> int:
        return self._frontier.size + len(self._leaf_positions)

    def _check_in_order(self, notification: Notification) -> None:
        mapper = self._ledger.mapper
        if notification.topic == HEAD_TOPIC:
            self._check_head(notification.id, decoded(notification, mapper, TreeHeadLog.Recorded))
        elif notification.topic == PUBLISHED_TOPIC:
            self._check_snapshot(
                notification.id, decoded(notification, mapper, SnapshotLog.Published)
            )

    # Ingest chains

    def _check_batch(self, position: int, facts: BatchFacts) -> None:
        chain = self._chains.get(facts.chain_key)
        previous = chain.head if chain else ChainHead.genesis(UUID(bytes=facts.chain_key))
        fault = link_fault(previous, facts)
        if fault is not None:
            raise FindingError(fault.reason, fault.message)
        if chain is None:
            chain = _ChainHistory(facts.dataset_id, facts.partition, previous)
            self._chains[facts.chain_key] = chain
        chain.append(position, facts)  # a batch's facts say where its chain then stood
        self._batches += 1

    # The Merkle log

    def _check_head(self, position: int, head: TreeHeadLog.Recorded) -> None:
        last = self._last_head
        where = f"tree head {head.originator_version} (size {head.tree_size})"
        if last is not None and not (
            head.tree_size > last.tree_size and head.last_position > last.last_position
        ):
            raise FindingError(
                "head_order",
                f"{where} does not extend the head before it "
                f"(size {last.tree_size}, log position {last.last_position})",
            )
        if not self._frontier_position <= head.last_position < position:
            raise FindingError(
                "head_order", f"{where} claims log position {head.last_position}, out of order"
            )
        if last is not None and head.timestamp < last.timestamp:
            raise FindingError(
                "head_timestamp", f"{where} is timestamped before the head before it"
            )
        frontier = self._frontier_through(head.last_position)
        covered = f"log positions {self._frontier_position + 1} to {head.last_position}"
        if frontier.size != head.tree_size:
            raise FindingError(
                "head_size",
                f"{where} covers {head.tree_size} events up to log position "
                f"{head.last_position}, but the log holds {frontier.size}",
            )
        if not compare_digest(frontier.root(), head.root):
            raise FindingError(
                "head_root",
                f"{where}: the root recomputed from the events differs from the signed root; "
                f"an event in {covered} is not as it was signed",
            )
        if tuple(head.subtree_roots) != frontier.subtree_roots:
            raise FindingError("head_frontier", f"{where}: the recorded frontier is not the tree's")
        if self._public_key is None:
            # Never a silent pass: a head whose signature cannot be checked is a finding.
            raise FindingError("head_unverifiable", f"{where}: no public key to verify it under")
        try:
            verify_tree_head(head.signed_head(), self._public_key)
        except DomainError as error:
            raise FindingError("head_signature", f"{where}: {error}") from None
        self._check_head_timestamp(where, head)
        self._forget_leaves_through(head.last_position, frontier)
        self._last_head = head
        self._heads += 1

    def _check_head_timestamp(self, where: str, head: TreeHeadLog.Recorded) -> None:
        if not head.timestamp_token:
            if self._require_timestamps:
                raise FindingError("head_timestamp_missing", f"{where} carries no timestamp")
            return
        if not self._tsa_anchors:
            raise FindingError(
                "head_timestamp_unverifiable", f"{where}: no TSA certificate to check its timestamp"
            )
        try:
            check_token(
                head.timestamp_token, head.timestamped_bytes(), self._tsa_anchors, head.timestamp
            )
        except TimestampError as error:
            raise FindingError("head_timestamp_token", f"{where}: {error}") from None

    def _frontier_through(self, last_position: int) -> MerkleFrontier:
        count = bisect_right(self._leaf_positions, last_position)
        hashes = bytes(self._leaf_hashes[: count * HASH_SIZE])
        return self._frontier.extend(
            hashes[start : start + HASH_SIZE] for start in range(0, len(hashes), HASH_SIZE)
        )

    def _forget_leaves_through(self, last_position: int, frontier: MerkleFrontier) -> None:
        count = bisect_right(self._leaf_positions, last_position)
        del self._leaf_positions[:count]
        del self._leaf_hashes[: count * HASH_SIZE]
        self._frontier, self._frontier_position = frontier, last_position

    # Snapshots

    def _check_snapshot(self, position: int, event: SnapshotLog.Published) -> None:
        first, last = event.first_position, event.last_position
        where = f"snapshot {event.snapshot_id} of {event.dataset_id}"
        previous_first, previous_last = self._snapshot_range
        # A build over a range without batches publishes nothing (only the builder's tracking
        # moves), so ranges may skip positions; one build publishes every changed dataset
        # over the same range.
        ordered = first > previous_last or (first, last) == (previous_first, previous_last)
        if not (ordered and first <= last < position):
            raise FindingError(
                "snapshot_range",
                f"{where} covers log positions {first} to {last}, which overlap the snapshots "
                f"before it (up to {previous_last}) or are not before it",
            )
        # Nothing of this dataset may fall between its snapshots: the chains must stand at
        # the start of this range where its previous snapshot left them.
        before = self._chain_heads_as_of(event.dataset_id, first - 1)
        if before != self._published_heads.get(event.dataset_id, {}):
            raise FindingError(
                "snapshot_gap",
                f"{where}: batches of {event.dataset_id} stored before log position {first} "
                "are in none of its snapshots",
            )
        if event.snapshot_id != snapshot_id_for(first, last):
            raise FindingError("snapshot_range", f"{where} is not named after its range")
        manifest = self._manifest(where, event)
        expected = self._chain_heads_as_of(event.dataset_id, last)
        recorded = {int(p): (int(v), str(h)) for p, v, h in event.chain_heads}
        in_manifest = {h.partition: (h.version, h.hash) for h in manifest.chain_heads}
        if recorded != expected or in_manifest != expected:
            raise FindingError(
                "snapshot_chain_heads",
                f"{where}: the chain heads it names are not the chains' heads "
                f"at log position {last}",
            )
        rows = self._rows_between(event.dataset_id, first, last)
        if manifest.row_count != rows or event.row_count != rows:
            raise FindingError(
                "snapshot_rows",
                f"{where} has {manifest.row_count} rows, "
                f"but the events in its range accepted {rows}",
            )
        self._check_files(where, manifest)
        self._snapshot_range = (first, last)
        self._published_heads[event.dataset_id] = expected
        for chain in self._chains.values():
            chain.forget_before(first - 1)
        self._snapshots += 1

    def _manifest(self, where: str, event: SnapshotLog.Published) -> Manifest:
        try:
            data = self._objects.get(event.manifest_key)
        except ObjectStoreError as error:
            raise FindingError("snapshot_manifest_missing", f"{where}: {error}") from None
        if hashlib.sha256(data).hexdigest() != event.manifest_sha256:
            raise FindingError(
                "snapshot_manifest_digest",
                f"{where}: {event.manifest_key} is not the manifest published",
            )
        try:
            manifest = Manifest.from_json(data)
        except (ValueError, KeyError, TypeError) as error:
            raise FindingError(
                "snapshot_manifest_invalid", f"{where}: manifest unreadable: {error}"
            ) from None
        said = (event.dataset_id, event.snapshot_id, event.first_position, event.last_position)
        says = (
            manifest.dataset_id,
            manifest.snapshot_id,
            manifest.first_position,
            manifest.last_position,
        )
        if said != says:
            raise FindingError("snapshot_manifest_mismatch", f"{where}: the manifest says {says}")
        return manifest

    def _check_files(self, where: str, manifest: Manifest) -> None:
        if sum(f.rows for f in manifest.files) != manifest.row_count:
            raise FindingError(
                "snapshot_rows", f"{where}: its files' rows do not add up to its total"
            )
        for file in manifest.files:
            try:
                data = self._objects.get(file.key)
            except ObjectStoreError as error:
                corrupt = isinstance(error, CorruptObjectError)
                reason = "snapshot_file_digest" if corrupt else "snapshot_file_missing"
                raise FindingError(reason, f"{where}: file {file.key}: {error}") from None
            if len(data) != file.bytes or hashlib.sha256(data).hexdigest() != file.sha256:
                raise FindingError(
                    "snapshot_file_digest", f"{where}: file {file.key} does not match its SHA-256"
                )

    def _dataset_chains(self, dataset_id: str) -> Iterator[_ChainHistory]:
        return (c for c in self._chains.values() if c.dataset_id == dataset_id)

    def _chain_heads_as_of(self, dataset_id: str, position: int) -> dict[int, tuple[int, str]]:
        heads = {}
        for chain in self._dataset_chains(dataset_id):
            head = chain.as_of(position)
            if head is not None:
                heads[chain.partition] = (head.version, head.hash)
        return heads

    def _rows_between(self, dataset_id: str, first: int, last: int) -> int:
        rows = 0
        for chain in self._dataset_chains(dataset_id):
            end, start = chain.as_of(last), chain.as_of(first - 1)
            rows += (end.accepted_total if end else 0) - (start.accepted_total if start else 0)
        return rows
