"""Two workers share a 4-partition topic; one dies mid-stream; the other takes over cleanly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from storage.catalog import Catalog
from storage.ingestion import IngestLedger
from tests.support.platform import (
    PlatformEnv,
    WorkerProcess,
    audit_store,
    dataset_file,
    publish_readings,
    stored_all,
    unique_suffix,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WAVES = 6
WAVE_SIZE = 10_000


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

    try:
        wait_until(
            lambda: (
                len(_ingest_partitions(second.log_path.read_text(), dataset.ingest_topic)) > 0
                and len(_ingest_partitions(first.log_path.read_text(), dataset.ingest_topic)) > 0
            ),
            timeout=180,
            what="both workers to be assigned partitions",
        )
        for wave in range(WAVES):
            report = publish_readings(tansu_broker, dataset, WAVE_SIZE, f"x{wave}-", 250)
            for partition, offset in report.last_offsets().items():
                targets[partition] = max(offset, targets.get(partition, -1))
            if wave == 1:
                position = ledger.position()
                wait_until(lambda p=position: ledger.position() > p, 60, 0.01, "progress")
                second.kill()
        wait_until(
            lambda: stored_all(ledger, dataset.ingest_topic, targets),
            timeout=300,
            what=f"all messages stored\n{first.log_tail()}",
        )
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
