"""The embedded Tansu broker speaks Kafka well enough for aiokafka."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from baylink.runtime.broker import TansuBroker
from baylink.runtime.errors import PortInUseError

pytestmark = pytest.mark.integration


async def produce(bootstrap: str, topic: str, count: int) -> None:
    # Tansu has no InitProducerId, so the idempotent producer must stay off.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for number in range(count):
            await producer.send_and_wait(topic, f"message-{number}".encode(), key=b"k")
    finally:
        await producer.stop()


async def consume(bootstrap: str, topic: str, count: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    received: list[bytes] = []
    try:
        while len(received) < count:
            batches = await consumer.getmany(timeout_ms=10_000)
            if not batches:
                break
            received.extend(
                record.value for records in batches.values() for record in records if record.value
            )
    finally:
        await consumer.stop()
    return received


async def test_a_hundred_messages_round_trip_through_the_broker(tansu_broker: str) -> None:
    topic = f"baylink.test.roundtrip.{uuid.uuid4().hex[:8]}"

    await produce(tansu_broker, topic, 100)
    received = await consume(tansu_broker, topic, 100)

    assert received == [f"message-{number}".encode() for number in range(100)]


def test_a_broker_refuses_a_taken_port_before_starting(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        broker = TansuBroker(tmp_path, port=sock.getsockname()[1])

        with pytest.raises(PortInUseError, match="is already in use"):
            broker.start()

    assert not broker.is_running()
