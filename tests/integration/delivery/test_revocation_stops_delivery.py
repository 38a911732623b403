"""Once revoking an agreement has returned, nothing more reaches the partner: records keep
arriving for two seconds and the relay keeps running, and no message on the partner's topic
was produced, and no webhook page arrived, after the revocation returned."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from domain.policy import Caller
from domain.provenance import Provenance
from domain.subscription import Channel
from storage.catalog import Catalog
from storage.delivery_feed import Delivered
from storage.governance import Governance
from storage.ingestion import IngestLedger
from storage.object_store_factory import open_object_store
from storage.subscriptions import SubscriptionInfo, Subscriptions, webhook_secret
from streams import wire
from streams.delivery_relay import DeliveryChannel, DeliveryRelay, KafkaChannel, RelaySettings
from streams.processor import IngestProcessor
from streams.webhook_channel import WebhookChannel
from tests.integration.api.governed import DATASETS, HK_DEPT, START, SZ, store_governed
from tests.integration.delivery.test_webhook_delivery import Receiver, serving
from tests.support.delivery_topics import subscription_messages
from tests.support.platform import reading_rows
from tests.support.services import fresh_postgres_url

pytestmark = pytest.mark.integration

SECRET = b"revocation-secret"
WINDOW_SECONDS = 2.0


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("revoke")
    objects = open_object_store((directory / "objects").as_uri())
    if request.param == "sqlite":
        url = f"sqlite:///{directory / 'events.sqlite'}"
        store_governed(url, objects)
        yield url
        return
    with fresh_postgres_url() as url:
        store_governed(url, objects)
        yield url


class Writer:
    """Stores a message of new Shenzhen readings every 20 ms until stopped."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        dataset = DATASETS[SZ]
        catalog, ledger = Catalog(self.url), IngestLedger(self.url)
        try:
            processor = IngestProcessor(ledger, catalog, clock=lambda: START + timedelta(days=1))
            message = 0
            while not self.stop.is_set():
                rows = reading_rows(50, prefix=f"w{message}-", start=START)
                provenance = Provenance(
                    f"file:///live-{message}.csv", START, f"{message % 100:02d}" * 32,
                    "tabular", "1", dataset.owner_region, wire.WIRE_SCHEMA_VERSION,
                )  # fmt: skip
                processor.process(
                    dataset.ingest_topic, 0, 10_000 + message, wire.encode_rows(rows),
                    wire.headers_for(wire.KIND_RECORDS, dataset.id, provenance, None),
                )  # fmt: skip
                message += 1
                time.sleep(0.02)
        finally:
            ledger.close()
            catalog.close()


@dataclass
class Revoked:
    """When revoking returned (ms), the relay's position then, and the log head after the window."""

    at_ms: float
    delivered_then: int
    head_after: int


async def _revoke_while_delivering(
    store_url: str, channel: Channel, sender: DeliveryChannel, **terms: Any
) -> tuple[SubscriptionInfo, Revoked]:
    """HK's department subscribes to Shenzhen's readings on ``channel``; records are stored
    every 20 ms, and once 30 log positions were delivered the agreement is revoked, and the
    relay keeps running for the window."""
    governance, subscriptions = Governance(store_url), Subscriptions(store_url)
    partner = governance.partner(HK_DEPT)
    caller = Caller(partner.partner_id, partner.region, partner.clearance)
    subscription = subscriptions.subscribe(
        governance, caller, DATASETS[SZ], channel, HK_DEPT, **terms
    )
    sid = subscription.terms.subscription_id
    relay = DeliveryRelay(store_url, SECRET, {channel: sender}, RelaySettings(poll_seconds=0.01))
    writer = Writer(store_url)
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    try:
        writer.thread.start()
        async with asyncio.timeout(60):
            while True:
                if await asyncio.to_thread(relay.log.delivered_up_to, sid) >= 30:
                    break
                await asyncio.sleep(0.01)
        await asyncio.to_thread(governance.revoke, "sz-hk-traffic", "gd-shenzhen", "ended")
        revoked_ms = time.time() * 1000
        delivered_then = await asyncio.to_thread(relay.log.delivered_up_to, sid)
        await asyncio.sleep(WINDOW_SECONDS)
        head_after = await asyncio.to_thread(relay.feed.head)
    finally:
        writer.stop.set()
        writer.thread.join()
        stop.set()
        await running
        relay.close()
        subscriptions.close()
        governance.close()
    assert head_after > delivered_then + 10, "records kept arriving during the window"
    return subscription, Revoked(revoked_ms, delivered_then, head_after)


async def test_after_revocation_returns_nothing_more_is_delivered(
    store_url: str, tansu_broker: str
) -> None:
    channel = KafkaChannel(tansu_broker)
    await channel.start()
    try:
        subscription, revoked = await _revoke_while_delivering(store_url, Channel.KAFKA, channel)
    finally:
        await channel.stop()

    sid = subscription.terms.subscription_id
    messages = await subscription_messages(tansu_broker, str(subscription.terms.topic), sid)
    produced = [m.timestamp for m in messages]  # producer timestamps, ms
    assert produced, "the relay delivered before the revocation"
    late = [t for t in produced if t > revoked.at_ms]
    assert late == [], f"{len(late)} messages produced after the revocation returned"


class _TimedReceiver(Receiver):
    """Takes every page, noting when each arrived."""

    def __init__(self) -> None:
        super().__init__(failure_rate=0.0)
        self.arrivals: list[float] = []

    def handle(self, body: bytes, headers: dict[str, str]) -> int:
        self.arrivals.append(time.time() * 1000)
        return super().handle(body, headers)


async def test_after_revocation_returns_no_webhook_arrives(store_url: str) -> None:
    receiver = _TimedReceiver()
    channel = WebhookChannel(SECRET, private_networks=True)  # the receiver is on loopback
    with serving(receiver) as url:
        try:
            _, revoked = await _revoke_while_delivering(
                store_url, Channel.WEBHOOK, _Signed(channel, receiver), webhook_url=url
            )
        finally:
            await channel.close()

    assert receiver.arrivals, "the relay delivered before the revocation"
    assert receiver.bad_signatures == 0
    late = [t for t in receiver.arrivals if t > revoked.at_ms]
    assert late == [], f"{len(late)} pages arrived after the revocation returned"


class _Signed:
    """Tells the receiver the subscription's signing secret before the first page is sent."""

    def __init__(self, channel: WebhookChannel, receiver: Receiver) -> None:
        self.channel, self.receiver = channel, receiver

    async def send(self, subscription: SubscriptionInfo, delivered: Sequence[Delivered]) -> None:
        terms = subscription.terms
        self.receiver.secret = webhook_secret(
            SECRET, terms.subscription_id, subscription.secret_version
        )
        await self.channel.send(subscription, delivered)
