"""SIGKILL the worker (and once the broker) while 100,000 records flow: nothing lost or doubled."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from storage.catalog import Catalog
from storage.ingestion import IngestLedger
from streams import faults
from tests.support.platform import (
    PlatformEnv,
    WorkerProcess,
    alive,
    audit_store,
    dataset_file,
    publish_readings,
    stored_all,
    unique_suffix,
    wait_until,
)
from tests.support.services import TansuOnS3Factory

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WAVES = 12
WAVE_SIZE = 8_500
BROKER_RESTART_WAVE = 8
BATCH_SIZE = 200


@pytest.mark.parametrize("readers", [0, 1], ids=["reading-inline", "reader-process"])
def test_killing_the_worker_at_random_and_named_moments_loses_and_doubles_nothing(
    tansu_on_s3: TansuOnS3Factory, tmp_path: Path, readers: int
) -> None:
    rng = random.Random(20261127)
    broker = tansu_on_s3()
    env = PlatformEnv(
        broker.bootstrap, f"sqlite:///{tmp_path / 'events.sqlite'}", "baylink-crash", tmp_path
    )
    env.cli("dataset", "register", str(dataset_file(tmp_path, unique_suffix())))
    catalog = Catalog(env.event_store_url)
    ledger = IngestLedger(env.event_store_url)
    dataset = catalog.list()[0]
    worker = WorkerProcess(
        env, extra_env={"BAYLINK_STREAMS_READER_PROCESSES": str(readers)}
    ).start()
    reader_pids: set[int] = set()
    targets: dict[int, int] = {}
    kills_mid_wave = random_kills = 0
    # A wave reaches each point at least once per partition (a worker that joins late may take
    # the whole wave at once): the count must be at most the partition count to be reached.
    named = {3: f"{faults.BEFORE_STORE_COMMIT}:3", 6: f"{faults.AFTER_STORE_COMMIT}:3"}
    try:
        for wave in range(WAVES):
            if wave in named:
                worker.stop()
                worker.start(**{faults.ENV: named[wave]})
            position = ledger.position()
            report = publish_readings(broker.bootstrap, dataset, WAVE_SIZE, f"w{wave}-", BATCH_SIZE)
            for partition, offset in report.last_offsets().items():
                targets[partition] = max(offset, targets.get(partition, -1))
            if wave in named:
                # The worker kills itself at the named point; then it is started again.
                assert worker.wait_exit(timeout=180) is not None, worker.log_tail()
                worker.start()
            else:
                wait_until(lambda p=position: ledger.position() > p, 180, 0.01, "progress")
                random_moment = rng.uniform(0, 0.15)
                asyncio.run(asyncio.sleep(random_moment))
                kills_mid_wave += not stored_all(ledger, dataset.ingest_topic, targets)
                reader_pids.update(worker.children())
                worker.kill()
                random_kills += 1
                if wave == BROKER_RESTART_WAVE:
                    broker.kill()
                    broker.start()
                worker.start()
        wait_until(
            lambda: stored_all(ledger, dataset.ingest_topic, targets),
            timeout=300,
            what=f"every published message to be stored\n{worker.log_tail()}",
        )
        audit = audit_store(ledger, dataset)
    finally:
        worker.stop()
        ledger.close()
        catalog.close()

    assert random_kills >= 10
    assert worker.starts == WAVES + 1 + len(named)
    assert kills_mid_wave >= 4, "too few kills landed while records were still flowing"
    assert audit.accepted_records == WAVES * WAVE_SIZE
    assert audit.distinct_record_ids == WAVES * WAVE_SIZE
    assert audit.duplicates == 0
    assert audit.rejected == 0
    # Readers of killed workers leave too.
    assert len(reader_pids) >= (random_kills if readers else 0)
    wait_until(lambda: not any(alive(pid) for pid in reader_pids), 30, 0.1, "readers to leave")
