"""How far each subscription's delivery has come and how fast, read from the delivery log
without going through every delivery: on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cloudevents.core.v1.event import CloudEvent

from domain.subscription import Channel
from storage.delivery_feed import Delivered, FeedPage
from storage.delivery_log import DeliveryLog
from storage.governance import Governance
from storage.subscriptions import SubscriptionInfo, Subscriptions
from tests.integration.storage.test_subscription_store import HK, NOW, ROAD_SPEED, stores

pytestmark = pytest.mark.integration

__all__ = ["stores"]


@pytest.fixture
def subscribed(
    stores: tuple[Governance, Subscriptions],
) -> Iterator[tuple[DeliveryLog, Governance, list[SubscriptionInfo]]]:
    governance, subscriptions = stores
    infos = [
        subscriptions.subscribe(governance, HK, ROAD_SPEED, Channel.SSE, "hk", at=NOW)
        for _ in range(2)
    ]
    log = DeliveryLog(subscriptions.event_store_url)
    try:
        yield log, governance, infos
    finally:
        log.close()


def _page(governance: Governance, through: int, records: int) -> FeedPage:
    decision = governance.decide(HK, ROAD_SPEED, NOW)
    delivered = [
        Delivered(
            through,
            f"r{through}-{k}",
            CloudEvent(
                {"id": f"r{through}-{k}", "source": "/t", "type": "t", "specversion": "1.0"}
            ),
            b"{}",
        )
        for k in range(records)
    ]
    return FeedPage(delivered, through, decision)


def test_a_stream_shows_the_furthest_position_it_sent_even_after_resuming_earlier(
    subscribed: tuple[DeliveryLog, Governance, list[SubscriptionInfo]],
) -> None:
    log, governance, (first, second) = subscribed

    log.record(first, _page(governance, 40, 3), 1, track=False)
    log.record(first, _page(governance, 25, 2), 20, track=False)  # a client resumed earlier
    log.record(second, _page(governance, 7, 1), 1, track=False)

    assert log.streamed_up_to(first.terms.subscription_id) == 40
    assert log.streamed_up_to(second.terms.subscription_id) == 7
    assert log.delivered_up_to(first.terms.subscription_id) == 0  # a relay's position: none


def test_the_rate_counts_only_deliveries_since_the_moment_asked_for(
    subscribed: tuple[DeliveryLog, Governance, list[SubscriptionInfo]],
) -> None:
    log, governance, (first, second) = subscribed
    now = datetime.now(UTC)

    log.record(first, _page(governance, 10, 5), 1, track=False, at=now - timedelta(minutes=5))
    log.record(first, _page(governance, 20, 3), 11, track=False, at=now - timedelta(seconds=20))
    log.record(second, _page(governance, 20, 4), 1, track=False, at=now - timedelta(seconds=10))
    log.record(first, _page(governance, 30, 2), 21, track=False, at=now)

    assert log.records_since(now - timedelta(minutes=1)) == {
        first.terms.subscription_id: 5,
        second.terms.subscription_id: 4,
    }
    assert log.records_since(now + timedelta(seconds=1)) == {}


def test_pages_written_together_note_each_streams_furthest_position(
    subscribed: tuple[DeliveryLog, Governance, list[SubscriptionInfo]],
) -> None:
    log, governance, (first, second) = subscribed

    log.record_untracked(
        [
            (first, _page(governance, 12, 2), 1),
            (second, _page(governance, 9, 1), 1),
            (first, _page(governance, 15, 1), 13),
        ]
    )
    log.record_untracked([(first, _page(governance, 14, 1), 13)])  # resumed from earlier

    assert log.streamed_up_to(first.terms.subscription_id) == 15
    assert log.streamed_up_to(second.terms.subscription_id) == 9
    assert sum(log.records_since(datetime.now(UTC) - timedelta(minutes=1)).values()) == 5


def test_a_busy_stream_notes_at_most_once_a_second_and_the_rest_is_read_from_recent_deliveries(
    subscribed: tuple[DeliveryLog, Governance, list[SubscriptionInfo]],
) -> None:
    log, governance, (first, _) = subscribed
    sid = first.terms.subscription_id

    log.record_untracked([(first, _page(governance, 10, 1), 1)])
    log.record_untracked([(first, _page(governance, 20, 1), 11)])  # within the second

    assert log.streamed_up_to(sid) == 10
    recent = log.recent_progress(datetime.now(UTC) - timedelta(minutes=1))
    assert recent[sid].furthest_position == 20
    log.note_streamed(every=0.0)  # as closing does
    assert log.streamed_up_to(sid) == 20
