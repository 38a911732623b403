"""Webhook delivery against a real HTTP receiver: half its requests fail and every record still
arrives, every request carries a valid signature, and a receiver that keeps failing is
dead-lettered after the configured attempts, then redriven."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from domain.policy import Caller
from domain.subscription import Channel, SubscriptionState
from storage.governance import Governance
from storage.subscriptions import SubscriptionInfo, Subscriptions, webhook_secret
from streams.delivery_relay import DeliveryRelay, RelaySettings
from streams.webhook_channel import BATCH_MEDIA_TYPE, WebhookChannel, events_of
from tests.integration.api.governed import (
    DATASETS,
    GZ_BUREAU,
    HK,
    GovernedStore,
    expected_ids,
)

pytestmark = pytest.mark.integration

SECRET = b"webhook-test-secret"
FAST = RelaySettings(
    poll_seconds=0.05, page_positions=2, retry_first_seconds=0.01, retry_max_seconds=0.05
)


class Receiver:
    """A webhook endpoint that refuses a share of requests and checks every signature."""

    def __init__(self, failure_rate: float, seed: int = 7) -> None:
        self.failure_rate = failure_rate
        self.random = random.Random(seed)
        self.secret: str | None = None
        self.events: list[dict[str, Any]] = []
        self.requests = self.refused = self.bad_signatures = 0
        self.message_ids: list[str] = []
        self._lock = threading.Lock()

    def handle(self, body: bytes, headers: dict[str, str]) -> int:
        with self._lock:
            self.requests += 1
            assert self.secret is not None
            try:
                Webhook(self.secret).verify(body, headers)
            except WebhookVerificationError:
                self.bad_signatures += 1
                return 401
            if headers.get("content-type") != BATCH_MEDIA_TYPE:
                return 415
            if self.random.random() < self.failure_rate:
                self.refused += 1
                return 500
            self.message_ids.append(headers["webhook-id"])
            self.events += events_of(body)
            return 204


@contextlib.contextmanager
def serving(receiver: Receiver) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            status = receiver.handle(body, {k.lower(): v for k, v in self.headers.items()})
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/baylink"
    finally:
        server.shutdown()
        server.server_close()


def _subscribe(url: str, webhook_url: str) -> SubscriptionInfo:
    governance, subscriptions = Governance(url), Subscriptions(url)
    try:
        partner = governance.partner(GZ_BUREAU)
        caller = Caller(partner.partner_id, partner.region, partner.clearance)
        return subscriptions.subscribe(
            governance, caller, DATASETS[HK], Channel.WEBHOOK, GZ_BUREAU, webhook_url=webhook_url
        )
    finally:
        subscriptions.close()
        governance.close()


async def _relay_until(relay: DeliveryRelay, done: Any) -> None:
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    try:
        async with asyncio.timeout(120):
            while True:
                if await asyncio.to_thread(done):
                    break
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await running


@contextlib.asynccontextmanager
async def webhook_relay(
    store_url: str,
    webhook_url: str,
    receiver: Receiver,
    max_attempts: int,
    *,
    private_networks: bool = True,  # the test receivers listen on loopback
) -> AsyncIterator[tuple[DeliveryRelay, str]]:
    """A relay delivering a new webhook subscription of GZ's bureau to ``webhook_url``, and the
    subscription's id; the receiver checks signatures with the subscription's secret."""
    subscription = _subscribe(store_url, webhook_url)
    sid = subscription.terms.subscription_id
    receiver.secret = webhook_secret(SECRET, sid, subscription.secret_version)
    channel = WebhookChannel(SECRET, private_networks=private_networks)
    settings = FAST.model_copy(update={"webhook_max_attempts": max_attempts})
    relay = DeliveryRelay(store_url, SECRET, {Channel.WEBHOOK: channel}, settings)
    try:
        yield relay, sid
    finally:
        await channel.close()
        relay.close()


async def test_a_receiver_failing_half_the_time_still_gets_every_record_signed(
    event_store_url: str, governed: GovernedStore
) -> None:
    receiver = Receiver(failure_rate=0.5)
    with serving(receiver) as url:
        async with webhook_relay(event_store_url, url, receiver, max_attempts=60) as (relay, sid):
            await _relay_until(relay, lambda: relay.log.delivered_up_to(sid) >= relay.feed.head())

    ids = [str(e["id"]) for e in receiver.events]
    assert sorted(ids) == sorted(expected_ids(governed, GZ_BUREAU, HK, {}))
    assert receiver.refused > 0
    assert receiver.bad_signatures == 0
    assert len(set(receiver.message_ids)) == len(receiver.message_ids)
    assert all(e["agreementid"] == "hk-gz-traffic" for e in receiver.events)


async def test_a_receiver_that_keeps_failing_is_dead_lettered_then_redriven(
    event_store_url: str, governed: GovernedStore
) -> None:
    receiver = Receiver(failure_rate=1.0)
    with serving(receiver) as url:
        async with webhook_relay(event_store_url, url, receiver, max_attempts=4) as (relay, sid):
            await _relay_until(
                relay,
                lambda: (
                    relay.subscriptions.subscription(sid).state is SubscriptionState.DEAD_LETTERED
                ),
            )
            dead = relay.subscriptions.subscription(sid)
            assert receiver.requests == 4
            assert dead.dead_letter_attempts == 4
            assert dead.history[-1][2] == "HTTP 500 from 127.0.0.1"
            # Where the refused page starts: nothing of it was recorded as delivered.
            assert dead.dead_letter_position == relay.log.delivered_up_to(sid) + 1
            assert receiver.events == []

            receiver.failure_rate = 0.0
            relay.subscriptions.redrive(sid, "admin")
            await _relay_until(relay, lambda: relay.log.delivered_up_to(sid) >= relay.feed.head())

    ids = [str(e["id"]) for e in receiver.events]
    assert sorted(ids) == sorted(expected_ids(governed, GZ_BUREAU, HK, {}))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_webhook_into_the_platforms_own_network_is_refused_and_dead_lettered(
    event_store_url: str, governed: GovernedStore, host: str
) -> None:
    receiver = Receiver(failure_rate=0.0)
    with serving(receiver) as loopback_url:
        async with webhook_relay(
            event_store_url,
            loopback_url.replace("127.0.0.1", host),
            receiver,
            max_attempts=2,
            private_networks=False,
        ) as (relay, sid):
            await _relay_until(
                relay,
                lambda: (
                    relay.subscriptions.subscription(sid).state is SubscriptionState.DEAD_LETTERED
                ),
            )
            reason = relay.subscriptions.subscription(sid).history[-1][2]

    assert receiver.requests == 0
    assert "not a public address" in reason
    assert "BAYLINK_DELIVERY_WEBHOOK_PRIVATE_NETWORKS=true" in reason
    assert "127.0.0.1" in reason
