"""Creating ingest topics with the partition count their dataset declares."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from domain.dataset import DatasetDefinition


async def ensure_ingest_topic(bootstrap_servers: str, dataset: DatasetDefinition) -> None:
    """Create the dataset's ingest topic unless it exists; safe to call again."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=15_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        if dataset.ingest_topic in existing:
            return
        try:
            await admin.create_topics(
                [NewTopic(dataset.ingest_topic, dataset.partitions, replication_factor=1)]
            )
        except TopicAlreadyExistsError:
            return
    finally:
        await admin.close()
