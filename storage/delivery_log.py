"""The delivery log: what each subscription was sent, and where its relay resumes.

A relay records a delivered page and its new position in one transaction (the position is a
tracking record named after the subscription), after the channel acknowledged the page: a
crash in between redelivers the page, never skips it. Streams served by the API record what
they sent without a position: the client's Last-Event-ID says where it resumes.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any, NamedTuple

from eventsourcing.persistence import IntegrityError, Notification, Tracking
from eventsourcing.utils import get_topic

from domain.delivery import DeliveryRecord
from storage.delivery_feed import FeedPage
from storage.ledger import LedgerApplication
from storage.subscriptions import SubscriptionInfo

_RECORDED = get_topic(vars(DeliveryRecord)["Recorded"])


# How far back a rate looks, in log positions, when no older delivery ends the search first.
_RATE_SCAN_POSITIONS = 200_000
_SCAN_WINDOW = 2_000


def tracking_name(subscription_id: str) -> str:
    return f"deliver:{subscription_id}"


def streamed_name(subscription_id: str) -> str:
    return f"streamed:{subscription_id}"


def record_ids_digest(record_ids: list[str]) -> str:
    """sha256 over the sorted ids, one per line: the same set gives the same digest."""
    return hashlib.sha256("\n".join(sorted(record_ids)).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class DeliveryEntry:
    position: int
    at: datetime
    subscription_id: str
    partner_id: str
    dataset_id: str
    channel: str
    agreement_id: str
    whitelist_version: int
    first_position: int
    last_position: int
    records: int
    record_ids_digest: str

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}


_STATE_FIELDS = [f.name for f in fields(DeliveryEntry) if f.name != "position"]
_NOTE_EVERY_SECONDS = 1.0


class RecentDeliveries(NamedTuple):
    records: int
    furthest_position: int


class DeliveryLog(LedgerApplication):
    """Records deliveries; answers where a relay resumes and what a partner received."""

    def __init__(self, event_store_url: str) -> None:
        super().__init__(event_store_url)
        # The furthest position each stream of this process noted: most pages need no look-up.
        self._streamed: dict[str, int] = {}
        # Positions streams sent but not noted yet, and when each subscription was last noted:
        # a note is its own transaction, so a busy stream notes at most once a second.
        self._unnoted: dict[str, int] = {}
        self._noted_at: dict[str, float] = {}
        self._notes_lock = threading.Lock()

    def close(self) -> None:
        self.note_streamed(every=0.0)
        super().close()

    def delivered_up_to(self, subscription_id: str) -> int:
        """The last log position the relay has delivered this subscription through."""
        return self.ledger.max_tracking_id(tracking_name(subscription_id)) or 0

    def record(
        self,
        subscription: SubscriptionInfo,
        page: FeedPage,
        first_position: int,
        *,
        track: bool,
        at: datetime | None = None,
    ) -> None:
        """Record ``page`` as delivered; with ``track``, the relay's position moves to its end.

        A page without records only moves the position (nothing was sent to record)."""
        terms = subscription.terms
        tracking = Tracking(tracking_name(terms.subscription_id), page.through) if track else None
        if not page.delivered:
            if tracking is not None and page.through > self.delivered_up_to(terms.subscription_id):
                self.events.put([], tracking=tracking)
            return
        entry = _entry(subscription, page, first_position, at or datetime.now(UTC))
        self.events.put(entry.collect_events(), tracking=tracking)
        if not track:
            self._note_streamed(terms.subscription_id, page.through)

    def streamed_up_to(self, subscription_id: str) -> int:
        """The furthest log position an API stream has sent this subscription through."""
        return self.ledger.max_tracking_id(streamed_name(subscription_id)) or 0

    def _note_streamed(self, subscription_id: str, through: int) -> None:
        # Not where a stream resumes (its client says that), only how far delivery has come,
        # so the subscription's progress is read without going through its deliveries.
        if through <= self._streamed.get(subscription_id, 0):
            return
        noted = self.streamed_up_to(subscription_id)
        if through > noted:
            # Another stream of the subscription may note the same position first.
            with contextlib.suppress(IntegrityError):
                self.events.put([], tracking=Tracking(streamed_name(subscription_id), through))
        self._streamed[subscription_id] = max(through, noted)

    def recent_progress(self, since: datetime) -> dict[str, RecentDeliveries]:
        """Per subscription, the records delivered at or after ``since`` and the furthest
        position they reached, read from the newest delivery back until an older one (or,
        with none, a bounded stretch of the log)."""
        recent: dict[str, RecentDeliveries] = {}
        stop = self.recorder.max_notification_id() or 0
        floor = max(0, stop - _RATE_SCAN_POSITIONS)
        while stop > floor:
            start = max(floor + 1, stop - _SCAN_WINDOW + 1)
            window = self.recorder.select_notifications(
                start=start, limit=_SCAN_WINDOW, stop=stop, topics=[_RECORDED]
            )
            older = False
            for notification in window:
                entry = self._entry(notification)
                if entry.at >= since:
                    before = recent.get(entry.subscription_id, RecentDeliveries(0, 0))
                    recent[entry.subscription_id] = RecentDeliveries(
                        before.records + entry.records,
                        max(before.furthest_position, entry.last_position),
                    )
                else:
                    older = True
            if older:
                break
            stop = start - 1
        return recent

    def records_since(self, since: datetime) -> dict[str, int]:
        """Records delivered per subscription at or after ``since``."""
        return {sid: r.records for sid, r in self.recent_progress(since).items()}

    def _entry(self, notification: Notification) -> DeliveryEntry:
        state = vars(self.mapper.to_domain_event(notification))
        return DeliveryEntry(notification.id, **{k: state[k] for k in _STATE_FIELDS})

    def record_untracked(self, sent: list[tuple[SubscriptionInfo, FeedPage, int]]) -> None:
        """Record pages sent by streams the API serves (their clients say where they resume,
        so no position moves), all in one write: (subscription, page, first position)."""
        now = datetime.now(UTC)
        events = [
            event
            for subscription, page, first_position in sent
            if page.delivered
            for event in _entry(subscription, page, first_position, now).collect_events()
        ]
        if events:
            self.events.put(events)
        with self._notes_lock:
            for subscription, page, _ in sent:
                sid = subscription.terms.subscription_id
                self._unnoted[sid] = max(self._unnoted.get(sid, 0), page.through)
        self.note_streamed()

    def note_streamed(self, every: float = _NOTE_EVERY_SECONDS) -> None:
        """Note how far each stream has sent, for subscriptions not noted in ``every`` s.

        A page not noted yet is still found by ``recent_progress`` for a minute, and the
        next write (or closing) notes it."""
        now = time.monotonic()
        with self._notes_lock:
            due = {
                sid: through
                for sid, through in self._unnoted.items()
                if now - self._noted_at.get(sid, -math.inf) >= every
            }
            for sid in due:
                del self._unnoted[sid]
                self._noted_at[sid] = now
        for sid, through in due.items():
            self._note_streamed(sid, through)

    def entries(
        self,
        partner_id: str | None = None,
        dataset_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        after: int = 0,
        limit: int = 1000,
        where: Callable[[DeliveryEntry], bool] | None = None,
    ) -> list[DeliveryEntry]:
        """Deliveries after log position ``after``, oldest first, made in [start, end) (and
        for which ``where`` holds, when given)."""
        found: list[DeliveryEntry] = []
        begin = after + 1
        while len(found) < limit:
            notifications = self.recorder.select_notifications(
                start=begin, limit=max(limit, 100), topics=[_RECORDED]
            )
            if not notifications:
                break
            for notification in notifications:
                entry = self._entry(notification)
                if (
                    (partner_id is None or entry.partner_id == partner_id)
                    and (dataset_id is None or entry.dataset_id == dataset_id)
                    and (start is None or entry.at >= start)
                    and (end is None or entry.at < end)
                    and (where is None or where(entry))
                ):
                    found.append(entry)
                    if len(found) == limit:
                        break
            begin = notifications[-1].id + 1
        return found


def _entry(
    subscription: SubscriptionInfo, page: FeedPage, first_position: int, at: datetime
) -> DeliveryRecord:
    terms = subscription.terms
    ids = [d.record_id for d in page.delivered]
    return DeliveryRecord(
        at=at,
        subscription_id=terms.subscription_id,
        partner_id=terms.partner_id,
        dataset_id=terms.dataset_id,
        channel=terms.channel.value,
        agreement_id=page.decision.agreement_id or "",
        whitelist_version=page.decision.whitelist_version,
        first_position=first_position,
        last_position=page.through,
        records=len(ids),
        record_ids_digest=record_ids_digest(ids),
    )
