"""A subscription's records as a stream the API serves (server-sent events, WebSocket).

Where a stream resumes: ``P`` means every record of log position P was received, ``P:k``
that the first k records of position P were. One log position holds a whole ingested
batch, so a position alone cannot mark a point inside it; with the ordinal a client that
disconnects anywhere resumes with the next record, neither skipping nor repeating one.
(Within one agreement a position's records always come in the same order: the grant's row
scope is fixed by the agreement, and a changed agreement stops the stream.)

The store is read in worker threads a bounded page at a time, so a slow client holds up
only its own stream. The streams of a process share one tail of the log, the decisions kept
under it and the partner views made from it (storage.delivery_tail, storage.decision_cache):
a stored batch wakes the waiting streams at once (api.log_watch), and serving a hundred
streams reads and decides little more than serving one. Every page sent is written to the
delivery log (untracked: the client says where it resumes), pages of many streams in one
write (api.sent_pages). While the policy does not grant the subscription, or it is paused,
the stream says so once and waits; nothing is skipped meanwhile. ``poll_seconds`` bounds
how long a waiting stream sleeps when nothing wakes it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import monotonic

from api.subscription_services import SubscriptionServices
from domain.policy import Decision
from domain.subscription import SubscriptionState
from storage.delivery_feed import Delivered, DeliveryFeed, FeedPage
from storage.delivery_tail import TailState
from storage.subscriptions import SubscriptionInfo

RESUME_PATTERN = r"^[0-9]{1,18}(:[0-9]{1,9})?$"
_RESUME = re.compile(RESUME_PATTERN)
PAGE_POSITIONS = 20
# Records sent between two checks of the grant while a page is sent.
CHECK_EVERY = 200
POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0


class BadResumePointError(ValueError):
    """A Last-Event-ID or ``after`` that is not ``P`` or ``P:k``."""


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Resume after ``skip`` records of position ``after + 1`` (all of ``after`` were seen)."""

    after: int = 0
    skip: int = 0

    @classmethod
    def parse(cls, text: str | None) -> ResumePoint:
        if text is None or not text.strip():
            return cls()
        text = text.strip()
        if not _RESUME.match(text):
            raise BadResumePointError(
                f"expected a log position P or P:k (k records of position P), got {text!r}"
            )
        position, _, ordinal = text.partition(":")
        if not ordinal:
            return cls(int(position))
        return cls(max(int(position) - 1, 0), int(ordinal))


# A record to send: as the feed made it, with the id a client resumes from (``event_id``).
# Shared with every stream sending it under the same grant, so nothing is made per stream.
Record = Delivered


@dataclass(frozen=True, slots=True)
class Records:
    """Records sent together (one write to the client), all decided under one check."""

    records: tuple[Record, ...]


@dataclass(frozen=True, slots=True)
class Paused:
    reason: str


@dataclass(frozen=True, slots=True)
class Heartbeat:
    pass


@dataclass(frozen=True, slots=True)
class Ended:
    state: str
    reason: str


StreamItem = Records | Paused | Heartbeat | Ended


@dataclass
class StreamTiming:
    page_positions: int = PAGE_POSITIONS
    poll_seconds: float = POLL_SECONDS
    heartbeat_seconds: float = HEARTBEAT_SECONDS


@dataclass
class _Progress:
    point: ResumePoint
    sent: list[Delivered] = field(default_factory=list)


async def subscription_stream(
    services: SubscriptionServices,
    subscription_id: str,
    start: ResumePoint,
    timing: StreamTiming | None = None,
) -> AsyncGenerator[StreamItem, None]:
    """The subscription's records after ``start``, for as long as the client listens."""
    timing = timing or StreamTiming()
    progress = _Progress(start)
    told: str | None = None
    idle_since = monotonic()
    while True:
        seen = _log_changed(services)
        tail = await services.watch.fresh()
        read = _read_kept(services, subscription_id, progress.point, timing.page_positions, tail)
        if read is None:
            read = await asyncio.to_thread(
                _read, services, subscription_id, progress.point, timing.page_positions, tail
            )
        info, page = read.info, read.page
        if info.state is SubscriptionState.CANCELLED:
            yield Ended(info.state.value, _last_reason(info))
            return
        why = _why_waiting(info, page)
        if why is not None:
            if why != told:
                told = why
                yield Paused(why)
            await _wait_after(services, seen, timing)
            continue
        told = None
        assert page is not None
        records = _unseen(page, progress.point)
        if records:
            try:
                sending = _send_while_granted(services, info, page, records, progress)
                async for chunk in sending:
                    yield chunk
            finally:
                await _record_sent(services, info, page, progress, len(records))
            idle_since = monotonic()
            if progress.point != ResumePoint(page.through):
                continue  # stopped part-way: the next page says why
        progress.point = ResumePoint(page.through)
        if page.through >= read.head:
            if monotonic() - idle_since >= timing.heartbeat_seconds:
                idle_since = monotonic()
                yield Heartbeat()
            await _wait_after(services, seen, timing)


@dataclass(frozen=True, slots=True)
class _Read:
    info: SubscriptionInfo
    page: FeedPage | None  # None unless the subscription is active
    head: int  # the newest log position when the page was read


def _read(
    services: SubscriptionServices,
    subscription_id: str,
    point: ResumePoint,
    positions: int,
    tail: TailState,
) -> _Read:
    """The subscription and its next page as of ``tail``, in one trip to a worker thread."""
    info = services.subscription_now(subscription_id, tail)
    if info.state is not SubscriptionState.ACTIVE:
        return _Read(info, None, 0)
    return _Read(info, services.feed.page(info, point.after, positions, tail=tail), tail.position)


def _read_kept(
    services: SubscriptionServices,
    subscription_id: str,
    point: ResumePoint,
    positions: int,
    tail: TailState,
) -> _Read | None:
    """``_read`` when all it needs is kept: usually so for a stream following the head, as
    the first stream a batch woke read it and made its view. It reads no store, so it runs on
    the event loop, saving a hundred streams a trip to a worker thread each."""
    info = services.kept_subscription(subscription_id, tail)
    if info is None:
        return None
    if info.state is not SubscriptionState.ACTIVE:
        return _Read(info, None, 0)
    feed = services.opened_feed
    page = None if feed is None else feed.kept_page(info, point.after, positions, tail)
    return None if page is None else _Read(info, page, tail.position)


async def _wait_after(services: SubscriptionServices, seen: int, timing: StreamTiming) -> None:
    if _log_changed(services) <= seen:  # else something came while this page was sent
        await services.watch.wait_after(seen, timing.poll_seconds)


def _log_changed(services: SubscriptionServices) -> int:
    """Where the shared tail was before this page was read: a stream that has read all there
    was waits for a change after it (one that came meanwhile wakes it at once)."""
    opened = services.opened_feed
    state = None if opened is None else opened.tail.state
    return 0 if state is None else state.changed


def _why_waiting(info: SubscriptionInfo, page: FeedPage | None) -> str | None:
    if info.state is not SubscriptionState.ACTIVE:
        reason = _last_reason(info)
        return f"the subscription is {info.state.value}" + (f": {reason}" if reason else "")
    assert page is not None
    return page.stopped


def _last_reason(info: SubscriptionInfo) -> str:
    return info.history[-1][2] if info.history else ""


def _unseen(page: FeedPage, point: ResumePoint) -> list[Record]:
    """The page's records less those the client has already: the first ``skip`` of position
    ``after + 1``, which come first when the page holds that position."""
    delivered = page.delivered
    start, skip = 0, min(point.skip, len(delivered))
    while start < skip and delivered[start].position == point.after + 1:
        start += 1
    return delivered[start:]


async def _send_while_granted(
    services: SubscriptionServices,
    info: SubscriptionInfo,
    page: FeedPage,
    records: list[Record],
    progress: _Progress,
) -> AsyncIterator[Records]:
    """The page's records in chunks, asking again whether the grant stands before each: the
    page was read under the decision at its start, and a revocation that has returned since
    must send nothing more, however slowly the client reads. A chunk is one write, so the
    progress moves once the client's connection has taken it."""
    for first in range(0, len(records), CHECK_EVERY):
        if not await _still_granted(services, info, page):
            return
        chunk = records[first : first + CHECK_EVERY]
        yield Records(tuple(chunk))
        progress.sent.extend(chunk)
        progress.point = ResumePoint.parse(chunk[-1].event_id)
    progress.point = ResumePoint(page.through)


async def _still_granted(
    services: SubscriptionServices, info: SubscriptionInfo, page: FeedPage
) -> bool:
    # The tail caught up after this check began, so a change that returned before it is seen;
    # the decision is usually kept, and then asked without leaving the event loop.
    tail = await services.watch.fresh()
    now = datetime.now(UTC)
    decision = services.feed.kept_decision(info, now, tail)
    if decision is None:
        decision = await asyncio.to_thread(_decision, services.feed, info, now, tail)
    return decision.allowed and decision.agreement_id == page.decision.agreement_id


def _decision(
    feed: DeliveryFeed, info: SubscriptionInfo, at: datetime, tail: TailState
) -> Decision:
    return feed.decision(info, feed.dataset(info.terms.dataset_id, tail), at, tail)


async def _record_sent(
    services: SubscriptionServices,
    info: SubscriptionInfo,
    page: FeedPage,
    progress: _Progress,
    records: int,
) -> None:
    sent, progress.sent = progress.sent, []
    if not sent:
        return
    # A page sent whole was read through its end; one cut short, through its last record.
    through = page.through if len(sent) == records else sent[-1].position
    done = FeedPage(sent, through, page.decision)
    await asyncio.shield(services.sent_pages.record((info, done, sent[0].position)))


def event_json(record: Record) -> str:
    return record.body.decode()


def paused_json(paused: Paused) -> str:
    return json.dumps({"reason": paused.reason})


def ended_json(ended: Ended) -> str:
    return json.dumps({"state": ended.state, "reason": ended.reason})
