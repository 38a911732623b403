"""The PostgreSQL ledger recorder keeps the eventsourcing library's own recorder contracts."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.tests.persistence import (
    ApplicationRecorderTestCase,
    ProcessRecorderTestCase,
    TrackingRecorderTestCase,
)

from storage.recorders import PostgresLedgerRecorder

pytestmark = pytest.mark.integration


class PostgresLedgerDatabase:
    """Gives each test its own fresh database (the `postgres_url` fixture) and closes the pool."""

    datastore: PostgresDatastore

    @pytest.fixture(autouse=True)
    def _database(self, postgres_url: str) -> Iterator[None]:
        url = urlsplit(postgres_url)
        self.datastore = PostgresDatastore(
            dbname=url.path.lstrip("/"),
            host=url.hostname or "127.0.0.1",
            port=url.port or 5432,
            user=url.username or "postgres",
            password=url.password or "",
            # The library's concurrency tests write from ten threads and read from two.
            pool_size=12,
        )
        try:
            yield
        finally:
            self.datastore.close()

    def create_recorder(self) -> PostgresLedgerRecorder:
        recorder = PostgresLedgerRecorder(self.datastore)
        recorder.create_table()
        return recorder


class TestPostgresLedgerRecorderAsProcessRecorder(PostgresLedgerDatabase, ProcessRecorderTestCase):
    pass


class TestPostgresLedgerRecorderAsApplicationRecorder(
    PostgresLedgerDatabase, ApplicationRecorderTestCase[PostgresLedgerRecorder]
):
    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestPostgresLedgerRecorderAsTrackingRecorder(
    PostgresLedgerDatabase, TrackingRecorderTestCase
):
    pass
