"""Fixtures for real services; every process started here is stopped at the end, even on failure."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from hypothesis import HealthCheck, settings

from baylink.runtime.broker import TansuBroker
from tests.support.services import (
    S3Endpoint,
    SeaweedServer,
    TansuOnS3Factory,
    fresh_postgres_url,
    start_tansu_on_s3,
)
from tests.support.telemetry import in_memory_telemetry

# Tests assert what happens, never how fast (benchmarks/ measures that): a property test's
# example that is slow only because the machine is busy must not fail it.
settings.register_profile("baylink", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("baylink")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Turn SIGTERM into KeyboardInterrupt, so a cancelled CI job still runs fixture teardown;
    export this process's telemetry to memory before anything can set it up otherwise."""
    in_memory_telemetry()

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


@pytest.fixture(scope="session")
def tansu_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a Tansu broker with memory storage, shared by the session."""
    with TansuBroker(tmp_path_factory.mktemp("tansu")) as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """S3 endpoint and credentials of a SeaweedFS server shared by the session."""
    server = SeaweedServer(tmp_path_factory.mktemp("seaweed"))
    server.start()
    try:
        yield server.s3
    finally:
        server.stop()


@pytest.fixture
def tansu_on_s3(seaweed: S3Endpoint, tmp_path: Path) -> Iterator[TansuOnS3Factory]:
    """Start Tansu brokers whose topics live in SeaweedFS and survive restart() and kill()."""
    started: list[TansuBroker] = []

    def start(bucket: str | None = None) -> TansuBroker:
        broker = start_tansu_on_s3(seaweed, tmp_path / "tansu", bucket)
        started.append(broker)
        return broker

    try:
        yield start
    finally:
        for broker in started:
            broker.stop()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of a fresh, uniquely named PostgreSQL database, dropped after the test."""
    with fresh_postgres_url() as url:
        yield url
