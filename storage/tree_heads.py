"""The Merkle log over the notification log: leaves read from the store, signed tree heads
recorded in it, and the proofs served against them.

Leaf i is the i-th notification of the log (counting from 0), in log order. Notification ids
are increasing but PostgreSQL may leave gaps (a sequence value taken by a rolled-back insert),
so the leaf index is not derived from the id: each leaf carries its log position instead, and
a head records the position of its last leaf.

Proofs are computed from leaf hashes recomputed from the log, up to the head's size, and kept
in memory for the next proof (the log only grows): correct and simple, at a cost linear in the
tree size for the first proof and the proof's own O(n) subtree hashing after (measured in the
ADR); a store of subtree roots can replace this later without changing what is served.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import overload
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.utils import get_topic
from opentelemetry import metrics

from domain.log_leaf import LogLeaf, stored_leaf_hash
from domain.merkle import HASH_SIZE, MerkleFrontier, Proof, consistency_proof, inclusion_proof
from domain.tree_head import sign_tree_head
from domain.tree_head_log import TREE_HEAD_LOG_ID, TreeHeadLog
from storage.errors import LogPositionNotFoundError, TreeHeadNotFoundError
from storage.head_timestamps import TimestampAuthority, TimestampError
from storage.ledger import LedgerApplication

HEAD_TOPIC = get_topic(TreeHeadLog.Recorded)
_PAGE = 1000
# Leaf hashes kept between proofs: 40 bytes each, so 200 MB at most; proofs under larger
# heads read the log each time.
MAX_KEPT_LEAVES = 5_000_000

log = logging.getLogger("baylink.storage.tree_heads")
_timestamp_failures = metrics.get_meter("baylink.storage").create_counter(
    "baylink.tree_heads.timestamp_failures",
    unit="{head}",
    description="Tree heads recorded without a timestamp because the TSA failed",
)


def log_leaf(notification: Notification) -> LogLeaf:
    """The Merkle log's leaf for one notification, as stored."""
    return LogLeaf.of_stored_event(
        notification.id,
        notification.topic,
        _uuid(notification.originator_id),
        notification.originator_version,
        notification.state,
    )


def log_leaf_hash(notification: Notification) -> bytes:
    """``log_leaf(notification).hash()``, the fast way for well-formed events."""
    return stored_leaf_hash(
        notification.id,
        notification.topic,
        _uuid(notification.originator_id),
        notification.originator_version,
        notification.state,
    )


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Where the event at ``leaf.position`` is in the tree of a recorded head, and the path."""

    head: TreeHeadLog.Recorded
    index: int
    leaf: LogLeaf
    path: Proof


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """The path showing the tree of ``first`` is a prefix of the tree of ``second``."""

    first: TreeHeadLog.Recorded
    second: TreeHeadLog.Recorded
    path: Proof


class LeafHashes(Sequence[bytes]):
    """Leaf hashes of a prefix of the log, in log order, with their log positions: 40 bytes
    a leaf in two flat buffers rather than a Python object each."""

    def __init__(self) -> None:
        self._hashes = bytearray()
        self._positions = array("q")

    def __len__(self) -> int:
        return len(self._positions)

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> list[bytes]: ...

    def __getitem__(self, index: int | slice) -> bytes | list[bytes]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return bytes(self._hashes[index * HASH_SIZE : (index + 1) * HASH_SIZE])

    @property
    def last_position(self) -> int:
        return self._positions[-1] if self._positions else 0

    def append(self, position: int, leaf_hash: bytes) -> None:
        self._positions.append(position)
        self._hashes += leaf_hash

    def count_through(self, position: int) -> int:
        """How many leaves have a log position up to ``position``."""
        return bisect_right(self._positions, position)

    def index_of(self, position: int) -> int | None:
        index = bisect_left(self._positions, position)
        found = index < len(self._positions) and self._positions[index] == position
        return index if found else None


class TreeHeadLedger(LedgerApplication):
    """The tree heads' view of the shared store."""

    def __init__(self, event_store_url: str, max_kept_leaves: int = MAX_KEPT_LEAVES) -> None:
        super().__init__(event_store_url)
        self._leaves = LeafHashes()
        self._leaves_lock = threading.Lock()
        self._max_kept_leaves = max_kept_leaves

    def heads(self, limit: int | None = None, desc: bool = False) -> list[TreeHeadLog.Recorded]:
        """Recorded heads, oldest first (newest first with ``desc``)."""
        stored = self.recorder.select_events(TREE_HEAD_LOG_ID, desc=desc, limit=limit)
        return [self._head(s) for s in stored]

    def latest(self) -> TreeHeadLog.Recorded | None:
        found = self.heads(limit=1, desc=True)
        return found[0] if found else None

    def head_of_size(self, tree_size: int) -> TreeHeadLog.Recorded:
        """The recorded head of this size. Each head is larger than the one before it (a head
        is only signed over new leaves), so it is found by bisecting versions: O(log n)
        single-event reads, however many heads there are."""
        latest = self.latest()
        low, high = 1, latest.originator_version if latest else 0
        while low <= high:
            middle = (low + high) // 2
            at_latest = latest is not None and middle == latest.originator_version
            head = latest if at_latest and latest is not None else self._head_at(middle)
            if head.tree_size == tree_size:
                return head
            if head.tree_size < tree_size:
                low = middle + 1
            else:
                high = middle - 1
        raise TreeHeadNotFoundError(f"no signed tree head of size {tree_size} is recorded")

    def _head_at(self, version: int) -> TreeHeadLog.Recorded:
        (stored,) = self.recorder.select_events(TREE_HEAD_LOG_ID, gt=version - 1, lte=version)
        return self._head(stored)

    def notifications(self, after: int, stop: int | None = None) -> Iterator[Notification]:
        """Every notification after log position ``after`` (up to ``stop``), in log order."""
        start = after + 1
        while stop is None or start <= stop:
            page = self.recorder.select_notifications(start, _PAGE, stop=stop)
            if not page:
                return
            yield from page
            start = page[-1].id + 1

    def leaf_hashes(self, head: TreeHeadLog.Recorded) -> LeafHashes:
        """The leaf hashes of (at least) the head's tree, recomputed from the log; the log
        only grows, so those read once are kept for the next proof (up to a bound)."""
        with self._leaves_lock:
            kept = self._leaves if head.tree_size <= self._max_kept_leaves else LeafHashes()
            if kept.last_position < head.last_position:
                for notification in self.notifications(kept.last_position, head.last_position):
                    kept.append(notification.id, log_leaf_hash(notification))
            found = kept.count_through(head.last_position)
        if found != head.tree_size:
            raise TreeHeadNotFoundError(
                f"the log holds {found} events up to position {head.last_position}, "
                f"but the head of size {head.tree_size} covers them"
            )
        return kept

    def inclusion(self, position: int, tree_size: int) -> InclusionProof:
        """The inclusion proof of the event at ``position`` under the recorded head of
        ``tree_size`` leaves (sizes come from signed heads, never from the caller alone)."""
        head = self.head_of_size(tree_size)
        if not 1 <= position <= head.last_position:
            raise LogPositionNotFoundError(
                f"log position {position} is not under the tree head of size {tree_size} "
                f"(positions 1 to {head.last_position})"
            )
        leaves = self.leaf_hashes(head)
        index = leaves.index_of(position)
        stored = self.recorder.select_notifications(position, 1, stop=position)
        if index is None or not stored:
            raise LogPositionNotFoundError(f"no event is stored at log position {position}")
        leaf = log_leaf(stored[0])
        return InclusionProof(head, index, leaf, inclusion_proof(leaves, index, tree_size))

    def consistency(self, first_size: int, second_size: int) -> ConsistencyProof:
        """The consistency proof between the recorded heads of these sizes."""
        first, second = self.head_of_size(first_size), self.head_of_size(second_size)
        if not 0 < first_size <= second_size:
            raise TreeHeadNotFoundError(
                f"no consistency from a tree of {first_size} to one of {second_size}: the first "
                "must be a non-empty tree no larger than the second"
            )
        leaves = self.leaf_hashes(second)
        return ConsistencyProof(first, second, consistency_proof(leaves, first_size, second_size))

    def record(self, head: TreeHeadLog.Recorded) -> None:
        self.events.put([head])

    def _head(self, stored: StoredEvent) -> TreeHeadLog.Recorded:
        event = self.mapper.to_domain_event(stored)
        assert isinstance(event, TreeHeadLog.Recorded)
        return event


class TreeHeadRecorder:
    """Follows the log, appends a leaf per event and records a signed head every
    ``every_events`` events or ``every_seconds`` seconds, whichever comes first.

    Resumes from the frontier of the last recorded head. A timed head is recorded only when
    something other than tree heads was stored since the last one, so an idle log does not
    keep signing heads over its own heads.

    With a ``tsa``, each head carries an RFC 3161 token over its signed bytes; a TSA that
    fails does not hold the head back: it is recorded without one, and the failure counted."""

    def __init__(
        self,
        ledger: TreeHeadLedger,
        key: Ed25519PrivateKey,
        every_events: int = 1000,
        every_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        tsa: TimestampAuthority | None = None,
    ) -> None:
        self.ledger = ledger
        self._key = key
        self._tsa = tsa
        self.timestamp_failures = 0
        self._every_events = every_events
        self._every_seconds = every_seconds
        self._clock = clock
        self._resume()

    def _resume(self) -> None:
        latest = self.ledger.latest()
        self._frontier = latest.frontier() if latest else MerkleFrontier()
        self._position = latest.last_position if latest else 0
        self._version = latest.originator_version if latest else 0
        self._head_size = self._frontier.size
        self._news = False  # a leaf other than a tree head since the last head
        self._head_at = self._clock()

    @property
    def frontier(self) -> MerkleFrontier:
        return self._frontier

    def run_once(self) -> list[TreeHeadLog.Recorded]:
        """Read what was stored since the last call; returns the heads recorded."""
        recorded: list[TreeHeadLog.Recorded] = []
        stop = self.ledger.position()
        for notification in self.ledger.notifications(self._position, stop):
            self._frontier = self._frontier.append(log_leaf_hash(notification))
            self._position = notification.id
            self._news = self._news or notification.topic != HEAD_TOPIC
            if self._frontier.size - self._head_size >= self._every_events:
                head = self._record()
                if head is None:
                    return recorded
                recorded.append(head)
        timed = self._clock() - self._head_at >= self._every_seconds
        if timed and self._news:
            head = self._record()
            if head is not None:
                recorded.append(head)
        return recorded

    def _record(self) -> TreeHeadLog.Recorded | None:
        frontier = self._frontier
        signed = sign_tree_head(frontier.size, frontier.root(), datetime.now(UTC), self._key)
        head = TreeHeadLog.Recorded(
            originator_id=TREE_HEAD_LOG_ID,
            originator_version=self._version + 1,
            timestamp=signed.head.timestamp,
            tree_size=frontier.size,
            root=frontier.root(),
            key_id=signed.head.key_id,
            signature=signed.signature,
            last_position=self._position,
            subtree_roots=list(frontier.subtree_roots),
        )
        if self._tsa is not None:
            head = dataclasses.replace(head, timestamp_token=self._timestamp(head))
        try:
            self.ledger.record(head)
        except IntegrityError:
            # Another recorder signed this version first: continue from its head.
            self._resume()
            return None
        self._version += 1
        self._head_size = frontier.size
        self._news = False
        self._head_at = self._clock()
        return head

    def _timestamp(self, head: TreeHeadLog.Recorded) -> bytes:
        assert self._tsa is not None
        try:
            return self._tsa.stamp(head.timestamped_bytes())
        except Exception as error:  # whatever the TSA sent, the head is recorded without it
            if not isinstance(error, TimestampError):
                error = TimestampError(f"{type(error).__name__}: {error}")
            self.timestamp_failures += 1
            _timestamp_failures.add(1)
            log.warning("tree head %d recorded without a timestamp: %s", head.tree_size, error)
            return b""
