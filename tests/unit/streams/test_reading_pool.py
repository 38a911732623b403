"""Reader processes read every message exactly as the worker itself would, and never outlive
or stall it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest
import yaml

from connectors.crs import ProjNormaliser
from domain.dataset import DatasetDefinition
from domain.provenance import Provenance
from domain.region import RegionRegistry
from domain.rejection import RejectionReason
from streams import wire
from streams.message_reading import Message, Reading, read_message
from streams.reading_pool import ReadingPool, make_validator
from tests.support.platform import SENSOR_READINGS, alive, reading_rows

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def dataset() -> DatasetDefinition:
    return DatasetDefinition.from_dict(yaml.safe_load(SENSOR_READINGS.read_text()))


@pytest.fixture(scope="module")
def pool() -> Iterator[ReadingPool]:
    readers = ReadingPool(2, RegionRegistry.default())
    readers.warm_up()
    try:
        yield readers
    finally:
        readers.close()


def _messages(dataset: DatasetDefinition) -> list[Message]:
    provenance = Provenance(
        "file:///x.csv", NOW, "c" * 64, "tabular", "1", "gd-shenzhen", wire.WIRE_SCHEMA_VERSION
    )
    headers = wire.headers_for(wire.KIND_RECORDS, dataset.id, provenance, None)
    start = NOW - timedelta(days=1)
    good = reading_rows(40, prefix="g", start=start)
    wrong_type = [*reading_rows(3, prefix="w", start=start), {**good[0], "speed": "fast"}]
    future = [{**good[1], "observed_at": NOW + timedelta(days=3)}]
    unknown_region = [{**good[2], "region": "atlantis"}]
    rejection = wire.encode_payload_rejection("bad-encoding", "not UTF-8", 12)
    rejection_headers = wire.headers_for(wire.KIND_REJECTED_PAYLOAD, dataset.id, provenance, None)
    values: list[tuple[bytes | None, wire.Headers | None]] = [
        (wire.encode_rows(good), headers),
        (wire.encode_rows(wrong_type), headers),
        (wire.encode_rows(future), headers),
        (wire.encode_rows(unknown_region), headers),
        (b"\xa3\x00\x00\x80", headers),  # not msgpack
        (wire.encode_rows(good)[:-7], headers),  # truncated
        (None, headers),
        (wire.encode_rows(good), None),  # no provenance
        (wire.encode_rows(good), [("baylink-kind", b"records")]),
        (rejection, rejection_headers),
    ]
    return [Message(offset, value, h) for offset, (value, h) in enumerate(values)]


def _inline(dataset: DatasetDefinition, messages: list[Message]) -> list[Reading]:
    validator = make_validator(dataset, RegionRegistry.default(), ProjNormaliser())
    return [read_message(dataset.ingest_topic, 2, m, dataset.id, validator, NOW) for m in messages]


def test_readers_read_every_message_as_the_worker_itself_would(
    pool: ReadingPool, dataset: DatasetDefinition
) -> None:
    messages = _messages(dataset)

    pooled = pool.read(dataset.ingest_topic, 2, messages, dataset.id, dataset, NOW).result()

    inline = _inline(dataset, messages)
    assert pooled == inline
    assert len(pooled[0].accepted) == 40
    assert not pooled[0].rejected
    assert all(reading.rejected for reading in pooled[1:])
    # Spread over both readers and back in order.
    assert [r.provenance for r in pooled] == [r.provenance for r in inline]


def test_messages_of_an_unknown_dataset_are_rejected_by_the_readers_too(
    pool: ReadingPool, dataset: DatasetDefinition
) -> None:
    messages = _messages(dataset)[:2]

    pooled = pool.read("baylink.ingest.nowhere.v1", 0, messages, "nowhere", None, NOW).result()

    assert [len(r.accepted) for r in pooled] == [0, 0]
    assert {r.rejected[0].reason for r in pooled} == {RejectionReason.UNKNOWN_DATASET}


def test_a_reader_that_dies_fails_its_batch_and_the_next_read_gets_new_readers(
    dataset: DatasetDefinition,
) -> None:
    good = _messages(dataset)[0]
    busy = [Message(n, good.value, good.headers) for n in range(400)]
    readers = ReadingPool(1, RegionRegistry.default())
    try:
        readers.warm_up()
        (first,) = readers.pids
        reading = readers.read(dataset.ingest_topic, 0, busy, dataset.id, dataset, NOW)
        os.kill(first, signal.SIGKILL)

        with pytest.raises(BrokenProcessPool):
            reading.result()
        again = readers.read(dataset.ingest_topic, 0, busy[:3], dataset.id, dataset, NOW)

        assert again.result() == _inline(dataset, busy[:3])
        assert readers.pids
        assert first not in readers.pids
    finally:
        readers.close()


def test_readers_ignore_the_interrupt_their_process_group_receives(
    pool: ReadingPool, dataset: DatasetDefinition
) -> None:
    messages = _messages(dataset)[:1]
    for pid in pool.pids:
        os.kill(pid, signal.SIGINT)
        os.kill(pid, signal.SIGTERM)

    read = pool.read(dataset.ingest_topic, 0, messages, dataset.id, dataset, NOW).result()

    assert read == _inline(dataset, messages)
    assert all(psutil.pid_exists(pid) for pid in pool.pids)


def test_readers_leave_when_the_worker_is_killed() -> None:
    script = (
        "from domain.region import RegionRegistry\n"
        "from streams.reading_pool import ReadingPool\n"
        "pool = ReadingPool(2, RegionRegistry.default())\n"
        "pool.warm_up()\n"
        "print(*pool.pids, flush=True)\n"
        "import time\n"
        "time.sleep(600)\n"
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert worker.stdout is not None
        pids = [int(pid) for pid in worker.stdout.readline().split()]
        assert len(pids) == 2
        assert all(psutil.pid_exists(pid) for pid in pids)

        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)

        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in pids), "a reader outlived its worker"
    finally:
        worker.kill()
        if worker.stdout is not None:
            worker.stdout.close()
