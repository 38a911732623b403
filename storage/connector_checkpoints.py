"""Where each connector source got to, kept in the event store's database beside the events.

A checkpoint is a small JSON document per (source, item): for an HTTP feed the item is ``""``
and the document holds its ETag, Last-Modified and payload sha256; for a watched directory
each file is an item holding its size, mtime and sha256. The runner writes a checkpoint only
after the broker acknowledged the payload's records, so a crash in between re-publishes the
payload, and the store drops the records it already holds by record id.

Checkpoints are mutable state, not history, so they live in a table of their own rather than
as events in the notification log that the worker, snapshot builder and auditors follow.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from psycopg.sql import SQL, Composed, Identifier

from storage.ledger import LedgerApplication
from storage.recorders import PostgresLedgerRecorder, SQLiteLedgerRecorder

CheckpointValue = Mapping[str, Any]
TABLE = "baylink_connector_checkpoints"

_SQLITE_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    "source TEXT NOT NULL, item TEXT NOT NULL, value TEXT NOT NULL, "
    "PRIMARY KEY (source, item)) WITHOUT ROWID"
)
_SQLITE_UPSERT = (
    f"INSERT INTO {TABLE} (source, item, value) VALUES (?, ?, ?) "  # noqa: S608 - constant
    "ON CONFLICT (source, item) DO UPDATE SET value = excluded.value"
)
_SQLITE_SELECT = f"SELECT item, value FROM {TABLE} WHERE source = ?"  # noqa: S608 - constant


class ConnectorCheckpoints(LedgerApplication):
    """Read and write checkpoints of connector sources; SQLite and PostgreSQL alike."""

    def __init__(self, event_store_url: str) -> None:
        super().__init__(event_store_url)
        self._create_table()

    def load(self, source: str) -> dict[str, dict[str, Any]]:
        """Every item's checkpoint of one source (empty when the source never ran)."""
        recorder = self.ledger
        if isinstance(recorder, SQLiteLedgerRecorder):
            with recorder.datastore.transaction(commit=False) as c:
                c.execute(_SQLITE_SELECT, (source,))
                rows = [(str(row[0]), str(row[1])) for row in c.fetchall()]
        else:
            with recorder.datastore.transaction(commit=False) as curs:
                curs.execute(
                    SQL("SELECT item, value FROM {0} WHERE source = %s").format(self._pg_table()),
                    (source,),
                )
                rows = [(str(row["item"]), str(row["value"])) for row in curs.fetchall()]
        return {item: json.loads(value) for item, value in rows}

    def get(self, source: str, item: str = "") -> dict[str, Any] | None:
        return self.load(source).get(item)

    def put(self, source: str, item: str, value: CheckpointValue) -> None:
        """Replace one item's checkpoint, durably (committed before this returns)."""
        document = json.dumps(dict(value), sort_keys=True, separators=(",", ":"))
        recorder = self.ledger
        if isinstance(recorder, SQLiteLedgerRecorder):
            with recorder.datastore.transaction(commit=True) as c:
                c.execute(_SQLITE_UPSERT, (source, item, document))
            return
        with recorder.datastore.transaction(commit=True) as curs:
            curs.execute(
                SQL(
                    "INSERT INTO {0} (source, item, value) VALUES (%s, %s, %s) "
                    "ON CONFLICT (source, item) DO UPDATE SET value = EXCLUDED.value"
                ).format(self._pg_table()),
                (source, item, document),
            )

    def _pg_table(self) -> Composed:
        recorder = self.ledger
        assert isinstance(recorder, PostgresLedgerRecorder)
        return SQL("{0}.{1}").format(Identifier(recorder.datastore.schema), Identifier(TABLE))

    def _create_table(self) -> None:
        recorder = self.ledger
        if isinstance(recorder, SQLiteLedgerRecorder):
            with recorder.datastore.transaction(commit=True) as c:
                c.execute(_SQLITE_CREATE)
            return
        with recorder.datastore.transaction(commit=True) as curs:
            curs.execute(
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0} (source text NOT NULL, item text NOT NULL, "
                    "value text NOT NULL, PRIMARY KEY (source, item))"
                ).format(self._pg_table())
            )
