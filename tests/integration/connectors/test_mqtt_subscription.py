"""The MQTT subscription against the running Mosquitto: QoS 1, persistent session, manual acks."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator

import pytest

from connectors.errors import SourceError
from connectors.mqtt import MqttEndpoint, MqttMessage, MqttSubscription
from tests.support.mqtt import HOST, PORT, forget_session, publish_qos1

pytestmark = pytest.mark.integration


def endpoint(topic: str, client_id: str) -> MqttEndpoint:
    return MqttEndpoint(HOST, PORT, topic, client_id)


async def take(subscription: MqttSubscription, count: int) -> list[MqttMessage]:
    taken: list[MqttMessage] = []

    async def collect() -> None:
        async for message in subscription.messages():
            taken.append(message)
            if len(taken) == count:
                return

    await asyncio.wait_for(collect(), 20)
    return taken


async def nothing_within(subscription: MqttSubscription, seconds: float) -> bool:
    try:
        await asyncio.wait_for(anext(subscription.messages()), seconds)
    except TimeoutError:
        return True
    return False


@pytest.fixture
def names() -> Iterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:10]
    yield f"baylink-test/{tag}/readings", f"baylink-test-{tag}"
    forget_session(f"baylink-test-{tag}")


async def test_messages_published_while_the_subscriber_was_away_arrive_when_it_returns(
    names: tuple[str, str],
) -> None:
    topic, client_id = names
    first = MqttSubscription(endpoint(topic, client_id), max_bytes=1024)
    await first.start()
    publish_qos1(topic, b'{"n": 1}')
    [message] = await take(first, 1)
    first.ack(message)
    await first.stop()

    publish_qos1(topic, b'{"n": 2}', b'{"n": 3}')

    second = MqttSubscription(endpoint(topic, client_id), max_bytes=1024)
    await second.start()
    try:
        later = await take(second, 2)
        for item in later:
            second.ack(item)
    finally:
        await second.stop()
    assert message.payload.data == b'{"n": 1}'
    assert message.payload.uri == f"mqtt://{HOST}:{PORT}/{topic}"
    assert message.qos == 1
    assert [item.payload.data for item in later] == [b'{"n": 2}', b'{"n": 3}']


async def test_a_message_not_acknowledged_is_delivered_again_after_a_restart(
    names: tuple[str, str],
) -> None:
    topic, client_id = names
    first = MqttSubscription(endpoint(topic, client_id), max_bytes=1024)
    await first.start()
    publish_qos1(topic, b'{"n": 1}', b'{"n": 2}')
    one, two = await take(first, 2)
    first.ack(one)
    await first.stop()  # two is in hand, not acknowledged

    second = MqttSubscription(endpoint(topic, client_id), max_bytes=1024)
    await second.start()
    try:
        [again] = await take(second, 1)
        second.ack(again)
        assert await nothing_within(second, 1.0)
    finally:
        await second.stop()
    assert again.payload.data == two.payload.data == b'{"n": 2}'
    assert again.redelivered


async def test_a_message_over_the_limit_arrives_refused_with_a_reason(
    names: tuple[str, str],
) -> None:
    topic, client_id = names
    subscription = MqttSubscription(endpoint(topic, client_id), max_bytes=8)
    await subscription.start()
    try:
        publish_qos1(topic, b"0123456789")
        [message] = await take(subscription, 1)
        subscription.ack(message)
    finally:
        await subscription.stop()
    assert message.error is not None
    assert message.error.reason == "too-large"
    assert f"message on {topic} holds 10 bytes; the limit is 8 bytes" == message.error.message


async def test_a_broker_that_does_not_answer_is_a_source_error_within_the_timeout() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    subscription = MqttSubscription(
        MqttEndpoint(HOST, closed_port, "t", "baylink-test-nobody"), max_bytes=8, connect_timeout=1
    )

    with pytest.raises(
        SourceError, match=r"cannot subscribe to mqtt://127\.0\.0\.1:\d+/t within 1s"
    ):
        await subscription.start()
