"""The Faust application factory and the thin ingest agent.

Nothing here runs at import time: ``create_app`` builds the app for given settings, topics
and processor. The agent decodes nothing itself; it hands each message to the processor
and retries only when the store is unreachable (never for bad input, which is stored as
a rejection).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import faust
from faust.types import TP

from streams import faults
from streams.ingest_telemetry import consumer_lag
from streams.processor import IngestProcessor, Message
from streams.settings import StreamsSettings

log = logging.getLogger("baylink.streams.app")

_RETRY_FIRST, _RETRY_MAX = 0.2, 10.0


def create_app(
    settings: StreamsSettings, topics: Sequence[str], processor: IngestProcessor
) -> faust.App:
    app = faust.App(
        settings.app_id,
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
        # Whatever is buffered is stored together: one transaction per partition and take.
        async for events in stream.take_events(settings.take_messages, settings.take_seconds):
            for (topic_name, partition), messages in _by_partition(events).items():
                await _process_until_stored(processor, topic_name, partition, messages)
                _note_lag(app, topic_name, partition, messages[-1].offset)

    async def on_rebalance(sender: Any, *args: Any, **kwargs: Any) -> None:
        # Positions are re-read from the store: it, not Kafka's offset, says where to resume.
        processor.forget()
        consumer_lag.forget()

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


def _by_partition(events: Sequence[Any]) -> dict[tuple[str, int], list[Message]]:
    groups: dict[tuple[str, int], list[Message]] = {}
    for event in events:
        message = event.message
        groups.setdefault((message.topic, message.partition), []).append(
            Message(message.offset, message.value, message.headers)
        )
    return groups


async def _process_until_stored(
    processor: IngestProcessor, topic: str, partition: int, messages: list[Message]
) -> None:
    delay = _RETRY_FIRST
    while True:
        try:
            await asyncio.to_thread(processor.process_many, topic, partition, messages)
            # Stored, but Kafka's offsets are not yet committed: a crash here means redelivery.
            faults.reached(faults.AFTER_STORE_COMMIT)
            return
        except Exception as error:  # the store is down or busy: wait, never skip the messages
            log.error(
                "could not store %s[%s]@%s..%s, retrying in %.1fs: %s",
                topic,
                partition,
                messages[0].offset,
                messages[-1].offset,
                delay,
                error,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX)
