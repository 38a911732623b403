"""Faust's aiokafka transport with a fetch wait of our choosing.

faust-streaming fixes the consumer's ``fetch_max_wait_ms`` at 1,500 ms. A broker that holds
a fetch for its whole wait when the partition was empty at the time of asking (Tansu does)
then delays the first records of a burst by up to that long, and the last ones too.
Kafka itself answers as soon as data arrives, so a shorter wait only means more empty
answers while idle. Faust's own wait for the records it asks of the consumer is capped the
same way (see ``_ConsumerThread.getmany``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import aiokafka
import faust
from faust.transport.consumer import RecordMap
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, ConsumerT, TransportT


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(
        self, transport: faust_aiokafka.Transport
    ) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # The one setting the driver does not take from the app's configuration.
        consumer._fetch_max_wait_ms = _fetch_wait_of(self.app)
        return consumer

    async def getmany(
        self,
        active_partitions: set[TP] | None,
        timeout: float,  # noqa: ASYNC109 (Faust's signature)
    ) -> RecordMap:
        # Faust asks for the partitions whose buffers have room, waiting up to a second. A
        # partition it set aside while its buffer was full and takes back meanwhile is left
        # out until that wait ends, though the fetcher may hold its records already: the
        # last messages of a burst then sat for most of a second (ADR 6).
        wait = min(timeout, _fetch_wait_of(self.app) / 1000)
        return await super().getmany(active_partitions, wait)


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer: ClassVar[type[ConsumerT]] = _Consumer


class KafkaApp(faust.App):
    """A Faust app whose consumer waits at most ``fetch_max_wait_ms`` for a fetch."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int, **kwargs: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> TransportT:
        return Transport(self.conf.broker_consumer, self)


def _fetch_wait_of(app: Any) -> int:
    return int(getattr(app, "fetch_max_wait_ms", 500))
