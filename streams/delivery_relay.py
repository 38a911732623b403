"""The delivery relay: follows the event store for every active subscription it delivers
(Kafka topics now; webhooks share the loop) and sends each its partner's view of new records.

Each subscription has its own task, position and pace, so one slow or failing subscriber
never holds up another, and the relay never touches the ingest path: it only reads the store.
A page is recorded, with the subscription's new position, after the channel acknowledged it:
a crash in between sends the page again (at-least-once; every event carries its record id
and log position for the consumer to deduplicate).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.subscription import Channel, SubscriptionState
from storage.delivery_feed import Delivered, DeliveryFeed
from storage.delivery_fence import fence_for
from storage.delivery_log import DeliveryLog
from storage.subscriptions import SubscriptionInfo, Subscriptions
from streams.publisher import make_producer

log = logging.getLogger("baylink.streams.delivery")

T = TypeVar("T")

CLOUDEVENTS_JSON = b"application/cloudevents+json"


class RelaySettings(BaseSettings):
    """How the relay paces itself; read from BAYLINK_DELIVERY_* variables."""

    model_config = SettingsConfigDict(env_prefix="BAYLINK_DELIVERY_", extra="ignore", frozen=True)

    poll_seconds: float = Field(default=0.5, gt=0)
    page_positions: int = Field(default=5_000, ge=1)
    delivery_partitions: int = Field(default=1, ge=1)
    retry_first_seconds: float = Field(default=0.5, gt=0)
    retry_max_seconds: float = Field(default=60.0, gt=0)
    # A webhook that refuses the same page this many times in a row is dead-lettered.
    webhook_max_attempts: int = Field(default=8, ge=1)
    # Webhooks go to public addresses only unless this allows loopback and private networks.
    webhook_private_networks: bool = False

    def retry_delay(self, failures: int) -> float:
        """Exponential backoff with jitter, so failing receivers are not retried in step."""
        ceiling = min(self.retry_max_seconds, self.retry_first_seconds * 2.0 ** (failures - 1))
        return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - spreading retries, not secrecy


class ChannelFailedError(Exception):
    """The channel did not acknowledge a page; the message says why, in one line."""


class DeliveryChannel(Protocol):
    async def send(self, subscription: SubscriptionInfo, delivered: Sequence[Delivered]) -> None:
        """Return once the receiver has acknowledged every event; raise otherwise."""


class KafkaChannel:
    """One message per record on the partner's topic, keyed by record id, in structured
    CloudEvents JSON: any Kafka client reads it, and a consumer deduplicates by key."""

    def __init__(self, bootstrap_servers: str, partitions: int = 1) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.partitions = partitions
        self.producer: AIOKafkaProducer = make_producer(bootstrap_servers)
        self._topics: set[str] = set()

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def send(self, subscription: SubscriptionInfo, delivered: Sequence[Delivered]) -> None:
        topic = subscription.terms.topic
        assert topic is not None
        await self._ensure_topic(topic)
        futures = [
            await self.producer.send(
                topic,
                value=item.json(),
                key=item.record_id.encode(),
                headers=[
                    ("content-type", CLOUDEVENTS_JSON),
                    ("baylink-position", str(item.position).encode()),
                    ("baylink-subscription", subscription.terms.subscription_id.encode()),
                ],
            )
            for item in delivered
        ]
        await asyncio.gather(*futures)

    async def _ensure_topic(self, topic: str) -> None:
        if topic in self._topics:
            return
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, self.partitions, 1)])
        except TopicAlreadyExistsError:
            pass
        finally:
            await admin.close()
        self._topics.add(topic)


class DeliveryRelay:
    """Runs one follower task per active subscription on the channels it is given."""

    def __init__(
        self,
        event_store_url: str,
        pseudonym_secret: bytes,
        channels: dict[Channel, DeliveryChannel],
        settings: RelaySettings | None = None,
    ) -> None:
        self.settings = settings or RelaySettings()
        self.channels = channels
        self.feed = DeliveryFeed(event_store_url, pseudonym_secret)
        self.log = DeliveryLog(event_store_url)
        self.subscriptions = Subscriptions(event_store_url)
        self.fence = fence_for(event_store_url)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # The relay's own threads for store calls, so that closing can wait for them.
        self._store_threads = ThreadPoolExecutor(thread_name_prefix="baylink-delivery")

    def close(self) -> None:
        # A follower cancelled by stopping leaves its store call running in a thread; closing
        # the store beneath a running SQLite query crashes the process.
        self._store_threads.shutdown(wait=True)
        self.feed.close()
        self.log.close()
        self.subscriptions.close()

    async def run(self, stop: asyncio.Event) -> None:
        """Follow every active subscription on a known channel until ``stop`` is set."""
        try:
            while not stop.is_set():
                await self._start_followers(stop)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.poll_seconds)
        finally:
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            self._tasks.clear()

    async def _in_thread(self, call: Callable[..., T], *args: object, **kwargs: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._store_threads, functools.partial(call, *args, **kwargs)
        )

    async def _start_followers(self, stop: asyncio.Event) -> None:
        for info in await self._in_thread(self.subscriptions.subscriptions):
            sid = info.terms.subscription_id
            running = self._tasks.get(sid)
            if running is not None and not running.done():
                continue
            if info.terms.channel in self.channels and info.state is SubscriptionState.ACTIVE:
                self._tasks[sid] = asyncio.create_task(self._follow(sid, stop), name=sid)

    async def _follow(self, subscription_id: str, stop: asyncio.Event) -> None:
        """Deliver one subscription until it is no longer active or the relay stops."""
        refusals = 0
        while not stop.is_set():
            info = await self._in_thread(self.subscriptions.subscription, subscription_id)
            if info.state is not SubscriptionState.ACTIVE:
                log.info("subscription %s is %s: delivery stops", subscription_id, info.state)
                return
            try:
                moved = await self.deliver_once(info)
                refusals = 0
            except ChannelFailedError as refused:
                refusals += 1
                if (
                    info.terms.channel is Channel.WEBHOOK
                    and refusals >= self.settings.webhook_max_attempts
                ):
                    await self._dead_letter(info, refusals, str(refused))
                    return
                await self._retry_later(subscription_id, refusals, str(refused), stop)
                continue
            except Exception as error:  # the store is down or busy: retry, never skip
                refusals += 1
                await self._retry_later(subscription_id, refusals, f"store: {error}", stop)
                continue
            if not moved:
                await _sleep_unless(stop, self.settings.poll_seconds)

    async def _retry_later(
        self, subscription_id: str, failures: int, reason: str, stop: asyncio.Event
    ) -> None:
        delay = self.settings.retry_delay(failures)
        log.warning(
            "delivering %s failed (%d in a row: %s); retrying in %.1fs",
            subscription_id,
            failures,
            reason,
            delay,
        )
        await _sleep_unless(stop, delay)

    async def _dead_letter(self, info: SubscriptionInfo, attempts: int, reason: str) -> None:
        sid = info.terms.subscription_id
        position = await self._in_thread(self.log.delivered_up_to, sid) + 1
        await self._in_thread(self.subscriptions.dead_letter, sid, position, attempts, reason)
        log.error(
            "subscription %s dead-lettered at log position %d after %d attempts: %s",
            sid,
            position,
            attempts,
            reason,
        )

    async def deliver_once(self, info: SubscriptionInfo) -> bool:
        """Deliver the next page; False when there was nothing new (or delivery is stopped)."""
        sid = info.terms.subscription_id
        after = await self._in_thread(self.log.delivered_up_to, sid)
        # Decided and sent inside the fence: a revocation that has returned has seen this
        # page sent, or this page is decided after it (storage.delivery_fence).
        async with held(self.fence.delivering(), self._in_thread):
            page = await self._in_thread(self.feed.page, info, after, self.settings.page_positions)
            if page.stopped is not None:
                log.info("subscription %s waits: %s", sid, page.stopped)
                return False
            if page.through <= after:
                return False
            if page.delivered:
                try:
                    await self.channels[info.terms.channel].send(info, page.delivered)
                except Exception as error:
                    raise ChannelFailedError(str(error) or type(error).__name__) from error
        await self._in_thread(self.log.record, info, page, after + 1, track=True)
        return True


@contextlib.asynccontextmanager
async def held(
    lock: AbstractContextManager[None], in_thread: Callable[..., Awaitable[object]]
) -> AsyncIterator[None]:
    """A blocking lock taken and given back in worker threads, held across awaits."""
    await in_thread(lock.__enter__)
    try:
        yield
    finally:
        await in_thread(lock.__exit__, None, None, None)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
