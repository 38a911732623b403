"""Reading what the relay delivered to a partner's Kafka topic, for tests."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

SUBSCRIPTION_HEADER = "baylink-subscription"


async def subscription_messages(bootstrap: str, topic: str, subscription_id: str) -> list[Any]:
    """One subscription's messages on its topic, oldest first (the broker outlives a test
    module's store, and a partner's earlier subscriptions deliver to the same topic). Read
    until the topic is quiet: Tansu's end offset lags the last record of a produced batch,
    so it cannot say when everything has been read."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        messages: list[Any] = []
        while batch := await consumer.getmany(partition, timeout_ms=1500):
            messages += batch.get(partition, [])
        wanted = (SUBSCRIPTION_HEADER, subscription_id.encode())
        return [m for m in messages if wanted in m.headers]
    finally:
        await consumer.stop()
