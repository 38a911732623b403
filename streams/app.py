"""The Faust application factory and the thin ingest agent.

Nothing here runs at import time: ``create_app`` builds the app for given settings, topics
and processor. The agent decodes nothing itself; it hands each message to the processor
and retries only when the store is unreachable (never for bad input, which is stored as
a rejection).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, cast

import faust
from faust.types import TP

from streams import faults
from streams.ingest_telemetry import consumer_lag, store_retries
from streams.kafka_transport import KafkaApp
from streams.message_reading import Message
from streams.processor import IngestProcessor
from streams.reading_pool import PendingReadings
from streams.settings import StreamsSettings

log = logging.getLogger("baylink.streams.app")

_RETRY_FIRST, _RETRY_MAX = 0.2, 10.0


def create_app(
    settings: StreamsSettings,
    topics: Sequence[str],
    processor: IngestProcessor,
    store_threads: Executor,
) -> faust.App:
    """The app; the processor's store calls run in ``store_threads``, which the caller shuts
    down (waiting) before closing the store: stopping cancels the agent, not its thread."""
    app = KafkaApp(
        settings.app_id,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        broker=settings.broker_url,
        processing_guarantee="at_least_once",
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.commit_interval_seconds,
        topic_allow_declare=False,
        producer_acks=-1,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=settings.session_timeout_seconds / 4,
        broker_rebalance_timeout=settings.rebalance_timeout_seconds,
        stream_wait_empty=False,
        stream_buffer_maxsize=settings.buffer_messages,
        loghandlers=[],
        **_state_options(settings),
    )
    topic = app.topic(*topics, key_type=bytes, value_type=bytes, value_serializer="raw")

    @app.agent(topic, concurrency=1, name="baylink.ingest")
    async def ingest(stream: Any) -> None:
        # Whatever is buffered is stored together: one transaction per partition and take,
        # or, with reader processes, per run of ``store_messages`` of a partition, so that
        # the worker stores one run while the readers read the next.
        group_size = settings.store_messages if processor.pool is not None else None
        async for events in stream.take_events(settings.take_messages, settings.take_seconds):
            groups = _by_partition(events, group_size)
            pending = await _start_reading(processor, groups, store_threads)
            for index, (topic_name, partition, messages) in enumerate(groups):
                await _process_until_stored(
                    processor, store_threads, topic_name, partition, messages, pending.get(index)
                )
                _note_lag(app, topic_name, partition, messages[-1].offset)

    async def on_rebalance(sender: Any, *args: Any, **kwargs: Any) -> None:
        # Positions are re-read from the store: it, not Kafka's offset, says where to resume.
        processor.forget()
        consumer_lag.forget()
        store_retries.forget()

    app.on_partitions_revoked.connect(cast(Any, on_rebalance))
    app.on_partitions_assigned.connect(cast(Any, on_rebalance))

    return app


def _state_options(settings: StreamsSettings) -> dict[str, Any]:
    if not settings.state_dir:
        return {}
    # Faust makes only the last level of it.
    Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
    return {"datadir": settings.state_dir}


def _note_lag(app: faust.App, topic: str, partition: int, stored_offset: int) -> None:
    """Lag after storing up to ``stored_offset``: the partition's end as last fetched, minus
    what is stored (0 once the worker has caught up)."""
    highwater = app.consumer.highwater(TP(topic, partition))
    if highwater is not None:
        consumer_lag.update(topic, partition, int(highwater) - (stored_offset + 1))


def _by_partition(
    events: Sequence[Any], size: int | None = None
) -> list[tuple[str, int, list[Message]]]:
    """Each partition's messages in offset order, in runs of at most ``size``."""
    partitions: dict[tuple[str, int], list[Message]] = {}
    for event in events:
        message = event.message
        partitions.setdefault((message.topic, message.partition), []).append(
            Message(message.offset, message.value, message.headers)
        )
    return [
        (topic, partition, messages[start : start + (size or len(messages))])
        for (topic, partition), messages in partitions.items()
        for start in range(0, len(messages), size or len(messages))
    ]


async def _start_reading(
    processor: IngestProcessor,
    groups: Sequence[tuple[str, int, list[Message]]],
    threads: Executor,
) -> dict[int, PendingReadings]:
    """Readings under way, by group; a group whose reading could not start (the catalog is
    unreachable) has none and is read when it is processed, with its retries."""
    if processor.pool is None:
        return {}  # read in the storing thread: nothing would run beside it
    loop = asyncio.get_running_loop()
    pending = {}
    for index, (topic, partition, messages) in enumerate(groups):
        try:
            pending[index] = await loop.run_in_executor(
                threads, processor.start_reading, topic, partition, messages
            )
        except Exception as error:
            log.warning("could not start reading %s[%s]: %s", topic, partition, error)
    return pending


async def _process_until_stored(
    processor: IngestProcessor,
    threads: Executor,
    topic: str,
    partition: int,
    messages: list[Message],
    pending: PendingReadings | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    delay = _RETRY_FIRST
    while True:
        try:
            store = functools.partial(processor.process_many, topic, partition, messages, pending)
            await loop.run_in_executor(threads, store)
            store_retries.stored(topic, partition)
            # Stored, but Kafka's offsets are not yet committed: a crash here means redelivery.
            faults.reached(faults.AFTER_STORE_COMMIT)
            return
        except Exception as error:  # the store is down or busy: wait, never skip the messages
            attempt = store_retries.failed(topic, partition)
            log.error(
                "could not store %s[%s]@%s..%s (attempt %d), retrying in %.1fs: %s",
                topic,
                partition,
                messages[0].offset,
                messages[-1].offset,
                attempt,
                delay,
                error,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX)
            pending = None  # read again: a reader may have been what failed
