"""One running worker per event-store backend, shared by the ingest tests of a module."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from domain.dataset import DatasetDefinition
from storage.catalog import Catalog
from storage.ingestion import IngestLedger
from tests.support import stores
from tests.support.platform import PlatformEnv, WorkerProcess, dataset_file, unique_suffix


@dataclass
class RunningPlatform:
    """A worker consuming two datasets' topics, with handles on its store."""

    env: PlatformEnv
    worker: WorkerProcess
    readings: DatasetDefinition
    readings_file: Path
    ledger: IngestLedger
    catalog: Catalog


@pytest.fixture(scope="module", params=[0, 1], ids=["reading-inline", "reader-process"])
def reader_processes(request: pytest.FixtureRequest) -> str:
    """The worker reads in its own process, or in a reader process beside it."""
    return str(request.param)


@pytest.fixture(scope="module", params=stores.BACKENDS)
def event_store_url(
    request: pytest.FixtureRequest,
    reader_processes: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """An empty store for each backend and way of reading: the tests count what it holds."""
    with stores.empty_store(request.param, tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="module")
def platform(
    tansu_broker: str,
    event_store_url: str,
    reader_processes: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningPlatform]:
    workdir = tmp_path_factory.mktemp("platform")
    env = PlatformEnv(tansu_broker, event_store_url, f"baylink-test-{unique_suffix()}", workdir)
    readings_file = dataset_file(workdir, unique_suffix())
    env.cli("dataset", "register", str(readings_file))
    catalog = Catalog(event_store_url)
    ledger = IngestLedger(event_store_url)
    readings = catalog.list()[0]
    worker = WorkerProcess(
        env, extra_env={"BAYLINK_STREAMS_READER_PROCESSES": reader_processes}
    ).start()
    try:
        yield RunningPlatform(env, worker, readings, readings_file, ledger, catalog)
    finally:
        worker.stop()
        ledger.close()
        catalog.close()
