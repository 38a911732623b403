"""The relay delivers each partner's view of a dataset to its own Kafka topic on the real
broker: two partners, two views of the same records, every delivery in the log, and a
channel that fails loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Iterator, Sequence
from datetime import datetime

import pytest
from typer.testing import CliRunner

from baylink.cli import app
from baylink.errors import BaylinkCliError
from domain.errors import SubscriptionTermsError
from domain.policy import Caller
from domain.subscription import Channel
from storage.delivery_feed import Delivered
from storage.delivery_log import DeliveryLog
from storage.governance import Governance
from storage.subscriptions import SubscriptionInfo, Subscriptions
from streams.delivery_relay import DeliveryRelay, KafkaChannel, RelaySettings
from tests.integration.api.governed import (
    DATASETS,
    GRANTS,
    HK_DEPT,
    MO_DSAT,
    SZ,
    GovernedStore,
    expected_ids,
)
from tests.support.delivery_topics import subscription_messages

pytestmark = pytest.mark.integration

SECRET = b"relay-test-secret"
FAST = RelaySettings(poll_seconds=0.05, page_positions=3)


@contextlib.contextmanager
def _subscribed(url: str, partner_id: str, dataset_id: str) -> Iterator[SubscriptionInfo]:
    """A Kafka subscription for the test, cancelled after it (one per partner and dataset)."""
    governance, subscriptions = Governance(url), Subscriptions(url)
    try:
        partner = governance.partner(partner_id)
        caller = Caller(partner.partner_id, partner.region, partner.clearance)
        info = subscriptions.subscribe(
            governance, caller, DATASETS[dataset_id], Channel.KAFKA, partner_id
        )
        try:
            yield info
        finally:
            subscriptions.cancel(info.terms.subscription_id, partner_id, "test over")
    finally:
        subscriptions.close()
        governance.close()


async def _relay_until_caught_up(
    relay: DeliveryRelay, subscriptions: Sequence[SubscriptionInfo]
) -> None:
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    try:
        async with asyncio.timeout(120):
            while True:
                head = await asyncio.to_thread(relay.feed.head)
                done = [
                    await asyncio.to_thread(relay.log.delivered_up_to, s.terms.subscription_id)
                    for s in subscriptions
                ]
                if all(d >= head for d in done):
                    break
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await running


async def test_two_partners_receive_their_own_views_on_their_own_topics(
    event_store_url: str, governed: GovernedStore, tansu_broker: str
) -> None:
    with (
        _subscribed(event_store_url, HK_DEPT, SZ) as hk,
        _subscribed(event_store_url, MO_DSAT, SZ) as mo,
    ):
        channel = KafkaChannel(tansu_broker)
        await channel.start()
        relay = DeliveryRelay(event_store_url, SECRET, {Channel.KAFKA: channel}, FAST)
        try:
            await _relay_until_caught_up(relay, [hk, mo])
        finally:
            await channel.stop()
            relay.close()

    raw = {r["record_id"]: r for r in governed.records[SZ]}
    for subscription, partner in ((hk, HK_DEPT), (mo, MO_DSAT)):
        topic, sid = str(subscription.terms.topic), subscription.terms.subscription_id
        messages = await subscription_messages(tansu_broker, topic, sid)
        events = [json.loads(m.value) for m in messages]
        keys = [m.key.decode() for m in messages]
        assert keys == [e["id"] for e in events]
        assert sorted(keys) == sorted(expected_ids(governed, partner, SZ, {}))
        grant = GRANTS[(partner, SZ)]
        for event in events:
            assert event["specversion"] == "1.0"
            assert event["agreementid"] == subscription.terms.agreement_id
            assert set(event["data"]) <= grant.columns | {"record_id", "region"}
            original = raw[event["id"]]
            if partner == HK_DEPT:
                assert re.fullmatch(r"[0-9a-f]{32}", event["data"]["sensor_id"])
                assert event["data"]["sensor_id"] != original["sensor_id"]
            else:
                assert event["data"]["sensor_id"] == original["sensor_id"]
                assert datetime.fromisoformat(event["data"]["observed_at"]).minute == 0
        log = DeliveryLog(event_store_url)
        try:
            entries = log.entries(partner_id=partner, dataset_id=SZ)
        finally:
            log.close()
        mine = [e for e in entries if e.subscription_id == subscription.terms.subscription_id]
        assert sum(e.records for e in mine) == len(keys)
        assert {e.agreement_id for e in mine} == {subscription.terms.agreement_id}


class _FailingFirst:
    """A channel whose first sends fail after sending part of the page."""

    def __init__(self, inner: KafkaChannel, failures: int) -> None:
        self.inner, self.failures = inner, failures

    async def send(self, subscription: SubscriptionInfo, delivered: Sequence[Delivered]) -> None:
        if self.failures:
            self.failures -= 1
            await self.inner.send(subscription, delivered[: len(delivered) // 2])
            raise ConnectionError("receiver went away mid-page")
        await self.inner.send(subscription, delivered)


async def test_a_failing_channel_is_retried_and_loses_nothing(
    event_store_url: str, governed: GovernedStore, tansu_broker: str
) -> None:
    with _subscribed(event_store_url, HK_DEPT, SZ) as subscription:
        topic, sid = str(subscription.terms.topic), subscription.terms.subscription_id
        inner = KafkaChannel(tansu_broker)
        await inner.start()
        failing = _FailingFirst(inner, failures=3)
        relay = DeliveryRelay(event_store_url, SECRET, {Channel.KAFKA: failing}, FAST)
        try:
            await _relay_until_caught_up(relay, [subscription])
        finally:
            await inner.stop()
            relay.close()

    keys = [m.key.decode() for m in await subscription_messages(tansu_broker, topic, sid)]
    expected = expected_ids(governed, HK_DEPT, SZ, {})
    assert failing.failures == 0
    assert set(keys) == set(expected)
    # Redelivered records are the half pages sent before each failure, recognisable by id.
    assert len(keys) > len(expected)


def test_a_partner_has_one_kafka_subscription_per_dataset(
    event_store_url: str, governed: GovernedStore
) -> None:
    with (
        _subscribed(event_store_url, HK_DEPT, SZ) as first,
        pytest.raises(SubscriptionTermsError, match=re.escape(first.terms.subscription_id)),
        _subscribed(event_store_url, HK_DEPT, SZ),
    ):
        pass


async def test_baylink_deliveries_lists_what_each_partner_received(
    event_store_url: str, governed: GovernedStore, tansu_broker: str
) -> None:
    with _subscribed(event_store_url, MO_DSAT, SZ) as subscription:
        channel = KafkaChannel(tansu_broker)
        await channel.start()
        relay = DeliveryRelay(event_store_url, SECRET, {Channel.KAFKA: channel}, FAST)
        try:
            await _relay_until_caught_up(relay, [subscription])
        finally:
            await channel.stop()
            relay.close()
    store = ["--event-store", event_store_url]

    listed = CliRunner().invoke(
        app, ["deliveries", "list", "--partner", MO_DSAT, "--dataset", SZ, "--json", *store]
    )
    future = CliRunner().invoke(
        app, ["deliveries", "list", "--since", "2999-01-01T00:00:00Z", "--json", *store]
    )
    naive = CliRunner().invoke(app, ["deliveries", "list", "--since", "2026-01-01", *store])

    assert listed.exit_code == 0, listed.output
    entries = [
        e
        for e in json.loads(listed.output)
        if e["subscription_id"] == subscription.terms.subscription_id
    ]
    assert sum(e["records"] for e in entries) == len(expected_ids(governed, MO_DSAT, SZ, {}))
    assert {(e["agreement_id"], e["channel"]) for e in entries} == {("sz-mo-traffic", "kafka")}
    assert future.exit_code == 0
    assert json.loads(future.output) == []
    assert isinstance(naive.exception, BaylinkCliError)  # main() prints it as one line
    assert str(naive.exception).startswith("--since: give a UTC offset")
