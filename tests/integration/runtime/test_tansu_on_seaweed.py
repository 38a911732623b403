"""With s3:// storage on SeaweedFS, Tansu keeps its topics across a crash and restart."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.support.services import TansuOnS3Factory

pytestmark = pytest.mark.integration


async def test_fifty_messages_survive_a_broker_crash_and_restart(
    tansu_on_s3: TansuOnS3Factory,
) -> None:
    broker = tansu_on_s3()
    topic = f"baylink.test.durable.{uuid.uuid4().hex[:8]}"
    sent = [f"durable-{number}".encode() for number in range(50)]
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for value in sent:
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()

    broker.kill()
    broker.restart()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    received: list[bytes] = []
    try:
        while len(received) < len(sent):
            batches = await consumer.getmany(timeout_ms=10_000)
            if not batches:
                break
            received.extend(r.value for records in batches.values() for r in records if r.value)
    finally:
        await consumer.stop()

    # Without keys the messages spread over partitions, so only the set and count are fixed.
    assert sorted(received) == sorted(sent)
