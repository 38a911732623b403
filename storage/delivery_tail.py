"""One reader of the notification log per delivery feed, shared by every subscription it serves.

Without it each subscription read and decoded the same batch events and replayed the same
governance for every page: a hundred streams of one dataset did the work a hundred times.
The tail reads each new notification once, keeps the decoded batch events of recent
positions, and counts the notifications that can change what a subscription may receive
(``policy_version``), so decisions can be kept until such a change is read.

Anything not known to leave decisions alone counts as a change (a new kind of event
invalidates kept decisions rather than being ignored). Reading up to the store's newest
notification before using a kept decision is what makes it safe: a change that has returned
is already in the log, so it is seen (PostgreSQL and SQLite both commit notification ids in
order).
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from eventsourcing.utils import get_topic

from domain.delivery import DeliveryRecord
from domain.ingest import IngestChain
from domain.snapshot import SnapshotLog
from storage.snapshots import SnapshotLedger

_BATCH_TOPIC = get_topic(IngestChain.BatchRecorded)
# Notifications that never change a dataset definition, a partner, an agreement or the
# whitelist: the data, and what delivery and the snapshot builder record about it.
_POLICY_NEUTRAL = frozenset(
    {
        _BATCH_TOPIC,
        get_topic(vars(DeliveryRecord)["Recorded"]),
        get_topic(SnapshotLog.Published),
    }
)
_READ_PAGE = 500
# Records of decoded batches kept (a batch is a few hundred to a few thousand records):
# enough for readers a few batches apart; a reader further behind reads the store.
KEPT_RECORDS = 100_000
# After a long pause (no stream followed the log), only the batches of the newest positions
# are decoded: older ones are read by the few readers that need them, from the store.
DECODE_WINDOW = 2_000


@dataclass(frozen=True, slots=True)
class TailState:
    """Where the tail is: the newest position read, and the position of the newest
    notification that may change a policy decision (0 before any)."""

    position: int
    policy_version: int
    # Newest position of a batch or a policy change: what a waiting stream waits for.
    changed: int


class LogTail:
    """Follows the notification log on demand; safe to share between threads."""

    def __init__(
        self,
        ledger: SnapshotLedger,
        kept_records: int = KEPT_RECORDS,
        decode_window: int = DECODE_WINDOW,
    ) -> None:
        self._ledger = ledger
        self._kept_records = kept_records
        self._decode_window = decode_window
        self._read_lock = threading.Lock()  # one reader at a time; the others wait and share
        self._lock = threading.Lock()
        self._state: TailState | None = None
        self._reads = 0  # reads begun (under _read_lock)
        self._covered_from = 0  # positions in [covered_from, position] are all in _batches
        self._batches: dict[int, IngestChain.BatchRecorded] = {}
        self._positions: list[int] = []  # of _batches, ascending
        self._kept = 0

    @property
    def state(self) -> TailState | None:
        """The state the last catch-up left (no store access)."""
        return self._state

    def catch_up(self) -> TailState:
        """Reads the notifications up to the store's newest one. Callers that arrive together
        share one read: a read that began after a caller arrived has seen everything recorded
        before it arrived, so the caller takes that read's result."""
        arrived = self._reads
        with self._read_lock:
            if self._reads > arrived and self._state is not None:
                return self._state
            self._reads += 1
            head = self._ledger.position()
            state = self._state
            if state is None:
                # Nothing before the first head is kept; everything then is a change.
                state = TailState(head, head, head)
                with self._lock:
                    self._covered_from = head + 1
                    self._state = state
                return state
            if head <= state.position:
                return state
            state = self._read(state, head)
            with self._lock:
                self._state = state
            return state

    def batches_between(
        self, dataset_id: str, first: int, last: int
    ) -> Iterator[tuple[int, IngestChain.BatchRecorded]]:
        """The dataset's batch events with positions in [first, last], in log order: kept
        ones when the tail has read the whole range, otherwise from the store."""
        kept = self.kept_batches(dataset_id, first, last)
        if kept is not None:
            yield from kept
            return
        for position, batch in self._ledger.batches_between(first, last):
            if batch.dataset_id == dataset_id:
                yield position, batch

    def kept_batches(
        self, dataset_id: str, first: int, last: int
    ) -> list[tuple[int, IngestChain.BatchRecorded]] | None:
        """As ``batches_between`` when the tail has read the whole range (no store access);
        else None."""
        with self._lock:
            state = self._state
            if state is None or first < self._covered_from or last > state.position:
                return None
            positions = self._positions[
                bisect_left(self._positions, first) : bisect_right(self._positions, last)
            ]
            batches = [(p, self._batches[p]) for p in positions]
        return [(p, b) for p, b in batches if b.dataset_id == dataset_id]

    def _read(self, state: TailState, head: int) -> TailState:
        position, policy, changed = state.position, state.policy_version, state.changed
        start = position + 1
        read: list[tuple[int, IngestChain.BatchRecorded]] = []
        skipped = 0
        while start <= head:
            page = self._ledger.recorder.select_notifications(start, _READ_PAGE, stop=head)
            if not page:
                break
            for notification in page:
                if notification.topic == _BATCH_TOPIC:
                    changed = notification.id
                    if notification.id <= head - self._decode_window:
                        skipped = notification.id  # too old to keep: not decoded
                        continue
                    event = self._ledger.mapper.to_domain_event(notification)
                    assert isinstance(event, IngestChain.BatchRecorded)
                    read.append((notification.id, event))
                elif notification.topic not in _POLICY_NEUTRAL:
                    policy = changed = notification.id
            start = page[-1].id + 1
        self._keep(read, skipped)
        return TailState(head, policy, changed)

    def _keep(self, read: Iterable[tuple[int, IngestChain.BatchRecorded]], skipped: int) -> None:
        with self._lock:
            if skipped:  # what is kept now begins after the batches not decoded
                while self._positions and self._positions[0] <= skipped:
                    self._kept -= self._batches.pop(self._positions.pop(0)).record_count
                self._covered_from = max(self._covered_from, skipped + 1)
            for position, batch in read:
                self._batches[position] = batch
                self._positions.append(position)  # read in log order: the list stays sorted
                self._kept += batch.record_count
            while self._kept > self._kept_records and self._positions:
                oldest = self._positions.pop(0)
                self._kept -= self._batches.pop(oldest).record_count
                self._covered_from = oldest + 1
