"""The SQLite ledger recorder keeps the eventsourcing library's own recorder contracts."""

from __future__ import annotations

from pathlib import Path

import pytest
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.tests.persistence import (
    ApplicationRecorderTestCase,
    ProcessRecorderTestCase,
    TrackingRecorderTestCase,
)

from storage.recorders import SQLiteLedgerRecorder


class SQLiteLedgerDatabase:
    """Gives each test its own database file (WAL needs a file; so do concurrent writers)."""

    db_path: Path

    @pytest.fixture(autouse=True)
    def _database_file(self, tmp_path: Path) -> None:
        self.db_path = tmp_path / "events.sqlite"

    def create_recorder(self) -> SQLiteLedgerRecorder:
        recorder = SQLiteLedgerRecorder(SQLiteDatastore(str(self.db_path), pool_size=20))
        recorder.create_table()
        return recorder


class TestSQLiteLedgerRecorderAsProcessRecorder(SQLiteLedgerDatabase, ProcessRecorderTestCase):
    pass


class TestSQLiteLedgerRecorderAsApplicationRecorder(
    SQLiteLedgerDatabase, ApplicationRecorderTestCase[SQLiteLedgerRecorder]
):
    pass


class TestSQLiteLedgerRecorderAsTrackingRecorder(SQLiteLedgerDatabase, TrackingRecorderTestCase):
    pass
