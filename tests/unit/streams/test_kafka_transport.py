"""The worker's consumer waits at most the configured time for a fetch, and for the records
Faust asks of it, and is otherwise the one faust-streaming's aiokafka driver makes."""

from __future__ import annotations

import asyncio
from typing import Any

import aiokafka
import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.kafka_transport import KafkaApp


def _app(fetch_max_wait_ms: int) -> KafkaApp:
    return KafkaApp(
        "baylink-transport-test",
        broker="kafka://127.0.0.1:9",
        fetch_max_wait_ms=fetch_max_wait_ms,
        consumer_max_fetch_size=3 * 1024 * 1024,
        web_enabled=False,
        autodiscover=False,
    )


async def _worker_consumer(fetch_max_wait_ms: int) -> aiokafka.AIOKafkaConsumer:
    app = _app(fetch_max_wait_ms)
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


def test_records_are_waited_for_no_longer_than_a_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    # Faust waits up to a second, for the partitions it asked for when the wait began.
    waits: list[float] = []

    async def driver_getmany(self: Any, active_partitions: Any, *wait: float) -> dict[Any, Any]:
        waits.extend(wait)
        return {}

    monkeypatch.setattr(faust_aiokafka.AIOKafkaConsumerThread, "getmany", driver_getmany)

    async def ask(fetch_max_wait_ms: int, seconds: float) -> None:
        thread = _app(fetch_max_wait_ms).consumer._thread  # type: ignore[attr-defined]
        await thread.getmany(None, seconds)

    asyncio.run(ask(40, 1.0))
    asyncio.run(ask(900, 1.0))
    asyncio.run(ask(900, 0.2))

    assert waits == [0.04, 0.9, 0.2]
