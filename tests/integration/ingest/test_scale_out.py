"""Two workers share a 4-partition topic; one dies mid-stream; the other takes over cleanly."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from domain.dataset import DatasetDefinition
from domain.provenance import Provenance
from storage.catalog import Catalog
from storage.ingestion import IngestLedger
from streams import wire
from streams.publisher import make_producer, publish_rows
from tests.support.platform import (
    PlatformEnv,
    WorkerProcess,
    audit_store,
    dataset_file,
    reading_rows,
    unique_suffix,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WAVES = 6
WAVE_SIZE = 10_000


async def _publish(bootstrap: str, dataset: DatasetDefinition, wave: int) -> dict[int, int]:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        provenance = Provenance(
            source_uri=f"file:///scale-out/wave-{wave}.csv",
            received_at=reading_rows(1)[0]["observed_at"],
            payload_sha256=f"{wave:064x}",
            connector="test",
            connector_version="1",
            region="hk",
            wire_schema_version=wire.WIRE_SCHEMA_VERSION,
        )
        report = await publish_rows(
            producer,
            dataset,
            reading_rows(WAVE_SIZE, prefix=f"x{wave}-"),
            provenance,
            batch_size=250,
        )
        return report.last_offsets()
    finally:
        await producer.stop()


def _ingest_partitions(log: str, topic: str) -> list[set[int]]:
    """Each assignment the worker logged, as the set of ingest partitions it got."""
    assignments = []
    for line in log.splitlines():
        if "Setting newly assigned partitions" in line:
            found = re.findall(rf"topic='{re.escape(topic)}', partition=(\d+)", line)
            assignments.append({int(p) for p in found})
    return assignments


def test_a_second_worker_takes_over_the_partitions_of_one_that_dies(
    tansu_broker: str, postgres_url: str, tmp_path: Path
) -> None:
    env = PlatformEnv(tansu_broker, postgres_url, f"baylink-scale-{unique_suffix()}", tmp_path)
    env.cli("dataset", "register", str(dataset_file(tmp_path, unique_suffix(), partitions=4)))
    catalog = Catalog(postgres_url)
    ledger = IngestLedger(postgres_url)
    dataset = catalog.list()[0]
    first = WorkerProcess(env, name="first", log_level="INFO").start()
    second = WorkerProcess(env, name="second", log_level="INFO").start()
    targets: dict[int, int] = {}

    def stored_all() -> bool:
        return all(
            (ledger.resume_offset(dataset.ingest_topic, p) or -1) >= o for p, o in targets.items()
        )

    try:
        wait_until(
            lambda: (
                len(_ingest_partitions(second.log_path.read_text(), dataset.ingest_topic)) > 0
                and len(_ingest_partitions(first.log_path.read_text(), dataset.ingest_topic)) > 0
            ),
            timeout=120,
            what="both workers to be assigned partitions",
        )
        for wave in range(WAVES):
            for partition, offset in asyncio.run(_publish(tansu_broker, dataset, wave)).items():
                targets[partition] = max(offset, targets.get(partition, -1))
            if wave == 1:
                position = ledger.position()
                wait_until(lambda p=position: ledger.position() > p, 60, 0.01, "progress")
                second.kill()
        wait_until(stored_all, timeout=300, what=f"all messages stored\n{first.log_tail()}")
        audit = audit_store(ledger, dataset)
        first_log = first.log_path.read_text()
        second_log = second.log_path.read_text()
    finally:
        first.stop()
        second.stop()
        ledger.close()
        catalog.close()

    shared = _ingest_partitions(second_log, dataset.ingest_topic)[-1]
    assert shared, "the second worker never owned a partition"
    assert _ingest_partitions(first_log, dataset.ingest_topic)[-1] == {0, 1, 2, 3}
    assert audit.accepted_records == WAVES * WAVE_SIZE
    assert audit.distinct_record_ids == WAVES * WAVE_SIZE
    assert audit.duplicates == 0
