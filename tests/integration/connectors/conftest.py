"""A worker consuming a readings dataset, for connector runs to feed; one per store backend."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from domain.dataset import DatasetDefinition
from storage.catalog import Catalog
from storage.connector_checkpoints import ConnectorCheckpoints
from storage.ingestion import IngestLedger
from tests.support import stores
from tests.support.connector import ConnectorProcess
from tests.support.platform import (
    SENSOR_READINGS,
    PlatformEnv,
    StoreAudit,
    WorkerProcess,
    audit_store,
    dataset_file,
    unique_suffix,
)


@dataclass
class FedPlatform:
    """A running worker, a registered readings dataset and handles on the store."""

    env: PlatformEnv
    worker: WorkerProcess
    readings: DatasetDefinition
    ledger: IngestLedger

    def audit(self) -> StoreAudit:
        return audit_store(self.ledger, self.readings)

    def connector(self, *args: str, name: str = "connector") -> ConnectorProcess:
        return ConnectorProcess(
            list(args), self.env.env(), self.env.workdir / f"{name}.log", self.env.workdir
        )


# The shared fixture, registered for this folder's tests.
event_store_url = stores.event_store_url


@pytest.fixture(scope="module")
def platform(
    tansu_broker: str, event_store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FedPlatform]:
    workdir = tmp_path_factory.mktemp("platform")
    env = PlatformEnv(tansu_broker, event_store_url, f"baylink-test-{unique_suffix()}", workdir)
    env.cli("dataset", "register", str(dataset_file(workdir, unique_suffix())))
    catalog = Catalog(event_store_url)
    readings = catalog.list()[0]
    catalog.close()
    ledger = IngestLedger(event_store_url)
    worker = WorkerProcess(env).start()
    try:
        yield FedPlatform(env, worker, readings, ledger)
    finally:
        worker.stop()
        ledger.close()


@pytest.fixture
def fed(platform: FedPlatform, tmp_path: Path) -> FedPlatform:
    """The module's platform with a dataset of the test's own, so its counts start at zero."""
    env = platform.env
    path = dataset_file(tmp_path, unique_suffix())
    env.cli("dataset", "register", str(path))
    catalog = Catalog(env.event_store_url)
    try:
        readings = catalog.get(yaml.safe_load(path.read_text())["id"])
    finally:
        catalog.close()
    return FedPlatform(env, platform.worker, readings, platform.ledger)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Catalog, ConnectorCheckpoints]]:
    """A SQLite store with the sensor-readings dataset, for runners with a stand-in producer."""
    url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    catalog = Catalog(url)
    catalog.register(DatasetDefinition.from_dict(yaml.safe_load(SENSOR_READINGS.read_text())))
    checkpoints = ConnectorCheckpoints(url)
    yield catalog, checkpoints
    checkpoints.close()
    catalog.close()
