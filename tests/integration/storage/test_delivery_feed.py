"""The delivery feed gives each subscription exactly its partner's grant, as CloudEvents with
log positions, and stops (without skipping) while the agreement does not grant it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

import pytest

from domain.errors import SubscriptionTermsError
from domain.subscription import Channel
from storage.delivery_feed import EVENT_TYPE, Delivered, DeliveryFeed
from storage.governance import Governance
from storage.object_store_factory import open_object_store
from storage.subscriptions import SubscriptionInfo
from tests.integration.api.governed import (
    DATASETS,
    GRANTS,
    GZ_BUREAU,
    HK,
    HK_DEPT,
    MO_DSAT,
    SZ,
    GovernedStore,
    expected_ids,
    store_governed,
    subscribe_sse,
)
from tests.support import stores

pytestmark = pytest.mark.integration
event_store_url = stores.event_store_url

SECRET = b"delivery-feed-secret"


@pytest.fixture(scope="module")
def governed(event_store_url: str, tmp_path_factory: pytest.TempPathFactory) -> GovernedStore:
    objects = open_object_store((tmp_path_factory.mktemp("feed") / "objects").as_uri())
    return store_governed(event_store_url, objects)


@pytest.fixture
def feed(event_store_url: str, governed: GovernedStore) -> Iterator[DeliveryFeed]:
    feed = DeliveryFeed(event_store_url, SECRET)
    try:
        yield feed
    finally:
        feed.close()


def _drain(feed: DeliveryFeed, subscription: SubscriptionInfo, after: int = 0) -> list[Delivered]:
    delivered: list[Delivered] = []
    while after < feed.head():
        page = feed.page(subscription, after, max_positions=2)
        assert page.stopped is None, page.stopped
        assert page.through > after
        delivered += page.delivered
        after = page.through
    return delivered


@pytest.mark.parametrize(("partner", "dataset_id"), [(HK_DEPT, SZ), (MO_DSAT, SZ), (GZ_BUREAU, HK)])
def test_a_subscription_receives_its_grant_and_nothing_more(
    event_store_url: str,
    governed: GovernedStore,
    feed: DeliveryFeed,
    partner: str,
    dataset_id: str,
) -> None:
    subscription = subscribe_sse(event_store_url, partner, dataset_id)

    delivered = _drain(feed, subscription)

    ids = [d.record_id for d in delivered]
    assert ids
    assert sorted(ids) == sorted(expected_ids(governed, partner, dataset_id, {}))
    assert len(set(ids)) == len(ids)
    positions = [d.position for d in delivered]
    assert positions == sorted(positions)
    grant = GRANTS[(partner, dataset_id)]
    raw = {r["record_id"]: r for r in governed.records[dataset_id]}
    for item in delivered:
        data = item.event.get_data()
        assert isinstance(data, dict)
        assert set(data) <= grant.columns | {"record_id", "region"}
        assert item.event.get_type() == EVENT_TYPE
        assert item.event.get_id() == item.record_id
        assert item.event.get_extension("dataset") == dataset_id
        assert item.event.get_extension("position") == item.position
        assert item.event.get_extension("agreementid") == subscription.terms.agreement_id
        assert re.fullmatch(r"[0-9a-f]{64}", item.event.get_extension("provenancedigest"))
        original = raw[item.record_id]
        for name, how in grant.transformed.items():
            if how == "pseudonym":
                assert re.fullmatch(r"[0-9a-f]{32}", str(data[name]))
            elif how == "mask":
                assert data[name] != original[name]
                assert str(data[name]).startswith("****")
            else:
                assert datetime.fromisoformat(str(data[name])).minute == 0


def test_delivered_json_is_structured_cloudevents(
    event_store_url: str, governed: GovernedStore, feed: DeliveryFeed
) -> None:
    subscription = subscribe_sse(event_store_url, GZ_BUREAU, HK)

    first = _drain(feed, subscription)[0]
    text = first.json().decode()

    assert '"specversion":"1.0"' in text.replace(" ", "")
    assert f'"id":"{first.record_id}"' in text.replace(" ", "")


def test_an_owner_region_partner_or_one_without_an_agreement_cannot_subscribe(
    event_store_url: str, governed: GovernedStore
) -> None:
    with pytest.raises(SubscriptionTermsError, match="no active agreement"):
        subscribe_sse(event_store_url, HK_DEPT, HK)
    with pytest.raises(SubscriptionTermsError, match="no active agreement"):
        subscribe_sse(event_store_url, GZ_BUREAU, SZ)


def test_suspension_stops_delivery_where_it_was_and_resumption_continues_from_there(
    event_store_url: str, governed: GovernedStore, feed: DeliveryFeed
) -> None:
    subscription = subscribe_sse(event_store_url, MO_DSAT, SZ)
    first = feed.page(subscription, 0, max_positions=feed.head() // 2)
    governance = Governance(event_store_url)
    try:
        governance.suspend("sz-mo-traffic", "gd-shenzhen", "review")
        try:
            stopped = feed.page(subscription, first.through)

            assert stopped.delivered == []
            assert stopped.through == first.through
            assert stopped.stopped is not None
            assert "sz-mo-traffic" in stopped.stopped
        finally:
            governance.resume("sz-mo-traffic", "gd-shenzhen", DATASETS.__getitem__)
    finally:
        governance.close()

    rest = _drain(feed, subscription, first.through)
    ids = [d.record_id for d in first.delivered + rest]
    assert sorted(ids) == sorted(expected_ids(governed, MO_DSAT, SZ, {}))


def test_a_subscription_starting_past_the_head_receives_nothing_yet(
    event_store_url: str, governed: GovernedStore, feed: DeliveryFeed
) -> None:
    subscription = subscribe_sse(event_store_url, HK_DEPT, SZ)
    later = SubscriptionInfo(
        terms=type(subscription.terms)(
            **{**subscription.terms.as_dict(), "channel": Channel.SSE, "start_position": 10**9}
        ),
        state=subscription.state,
        secret_version=1,
        dead_letter_position=None,
        dead_letter_attempts=0,
        history=(),
    )

    page = feed.page(later, 0)

    assert page.delivered == []
    assert page.through == 10**9 - 1


def test_subscriptions_under_one_grant_share_views_and_other_grants_do_not(
    event_store_url: str, governed: GovernedStore, feed: DeliveryFeed
) -> None:
    first, second = (subscribe_sse(event_store_url, HK_DEPT, SZ) for _ in range(2))
    other = subscribe_sse(event_store_url, MO_DSAT, SZ)

    a, b, c = (feed.page(s, 0, max_positions=feed.head()).delivered for s in (first, second, other))

    assert a
    assert [d.record_id for d in a] == [d.record_id for d in b]
    assert all(x is y for x, y in zip(a, b, strict=True))
    shared = {d.record_id for d in a} & {d.record_id for d in c}
    assert shared
    hk_view = {d.record_id: d.body for d in a}
    assert all(hk_view[d.record_id] != d.body for d in c if d.record_id in shared)
