"""The worker's consumer waits at most the configured time for a fetch, and is otherwise the
one faust-streaming's aiokafka driver makes."""

from __future__ import annotations

import asyncio

import aiokafka

from streams.kafka_transport import KafkaApp


async def _worker_consumer(fetch_max_wait_ms: int) -> aiokafka.AIOKafkaConsumer:
    app = KafkaApp(
        "baylink-transport-test",
        broker="kafka://127.0.0.1:9",
        fetch_max_wait_ms=fetch_max_wait_ms,
        consumer_max_fetch_size=3 * 1024 * 1024,
        web_enabled=False,
        autodiscover=False,
    )
    thread = app.consumer._thread  # type: ignore[attr-defined]
    consumer: aiokafka.AIOKafkaConsumer = thread._create_worker_consumer(app.transport)
    return consumer


def test_the_consumer_fetch_wait_is_the_configured_one() -> None:
    short = asyncio.run(_worker_consumer(40))
    long = asyncio.run(_worker_consumer(900))

    assert short._fetch_max_wait_ms == 40
    assert long._fetch_max_wait_ms == 900
    # Everything else still comes from the app's configuration through the driver.
    assert short._max_partition_fetch_bytes == 3 * 1024 * 1024
    assert short._group_id == "baylink-transport-test"
