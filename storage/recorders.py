"""Process recorders that also keep the record index, in the same transaction as the events.

The index maps each accepted record id to the batch event that holds it. It makes ingestion
idempotent across re-sent files (a record id is stored once) and lets a record be found by id.
Entries are passed to ``insert_events`` as the keyword ``record_index``: one
``(originator_id, originator_version, record_ids)`` per batch event, ``record_ids`` being the
batch's 16-byte ids concatenated. Each entry is one SQL statement that splits the ids in the
database: a row per record costs a statement's worth of Python per record, which at ingest
rates cost more than the rest of the write.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresProcessRecorder
from eventsourcing.sqlite import SQLiteCursor, SQLiteProcessRecorder
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

RecordIndexEntry = tuple[UUID, int, bytes]
RECORD_ID_BYTES = 16
_LOOKUP_CHUNK = 5_000


def index_entry(originator_id: UUID, version: int, record_ids: Sequence[str]) -> RecordIndexEntry:
    """A batch event's entry: its record ids (hex) packed as 16 bytes each."""
    return (originator_id, version, bytes.fromhex("".join(record_ids)))


def _count(entry: RecordIndexEntry) -> int:
    return len(entry[2]) // RECORD_ID_BYTES


# The record index's keys start with the record's time (see domain.record.time_prefix), so
# new rows land near each other; a larger page cache keeps those pages and the inner ones in
# memory, and checkpointing the WAL every 10,000 pages instead of SQLite's 1,000 spares a
# checkpoint (a write and fsync of the database file) on almost every commit. Neither changes
# what is stored or when a commit is durable (the WAL is still synced at each commit).
_WRITER_PRAGMAS = ("PRAGMA cache_size = -16384", "PRAGMA wal_autocheckpoint = 10000")

_SQLITE_INSERT_INDEX = (
    "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?3) "
    "INSERT INTO baylink_record_index "
    "SELECT substr(?4, i * 16 + 1, 16), ?1, ?2 FROM n"
)


def _tune_writer(c: SQLiteCursor) -> None:
    # Connection settings, not part of the transaction; repeating them costs a few µs a batch
    # and does not drop cached pages.
    for pragma in _WRITER_PRAGMAS:
        c.execute(pragma)


class SQLiteLedgerRecorder(SQLiteProcessRecorder):
    """SQLite process recorder with the record index."""

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS baylink_record_index ("
            "record_id BLOB PRIMARY KEY, originator_id BLOB NOT NULL, "
            "originator_version INTEGER NOT NULL) WITHOUT ROWID",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        returning = super()._insert_events(c, stored_events, **kwargs)
        entries: list[RecordIndexEntry] = kwargs.get("record_index") or []
        if entries:
            _tune_writer(c)
            for entry in entries:
                if _count(entry):
                    c.execute(
                        _SQLITE_INSERT_INDEX, (entry[0].bytes, entry[1], _count(entry), entry[2])
                    )
        return returning

    def existing_record_ids(self, record_ids: Iterable[str]) -> set[str]:
        """Those of the given ids that are stored already."""
        found: set[str] = set()
        ids = [bytes.fromhex(r) for r in record_ids]
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(ids), _LOOKUP_CHUNK):
                chunk = ids[start : start + _LOOKUP_CHUNK]
                placeholders = ",".join("?" * len(chunk))
                c.execute(
                    "SELECT record_id FROM baylink_record_index "  # noqa: S608 - placeholders only
                    f"WHERE record_id IN ({placeholders})",
                    chunk,
                )
                found.update(bytes(row[0]).hex() for row in c.fetchall())
        return found

    def locate_record(self, record_id: str) -> tuple[UUID, int] | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT originator_id, originator_version FROM baylink_record_index "
                "WHERE record_id = ?",
                [bytes.fromhex(record_id)],
            )
            row = c.fetchone()
        return None if row is None else (UUID(bytes=bytes(row[0])), int(row[1]))


class PostgresLedgerRecorder(PostgresProcessRecorder):
    """PostgreSQL process recorder with the record index."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.records_table_name = self.events_table_name.removesuffix("_events") + "_record_index"
        self.check_identifier_length(self.records_table_name)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {0}.{1} (record_id bytea PRIMARY KEY, "
                "originator_id uuid NOT NULL, originator_version bigint NOT NULL)"
            ).format(Identifier(self.datastore.schema), Identifier(self.records_table_name))
        )

    def _records_table(self) -> Composed:
        return SQL("{0}.{1}").format(
            Identifier(self.datastore.schema), Identifier(self.records_table_name)
        )

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The library's pipelined insert, letting the first error leave the block.

        The library keeps the error it catches and re-raises it after the pipeline has closed;
        when the server's answer arrives before the pipeline's sync (a large batch whose
        record ids were stored before), closing the pipeline raises ``PipelineAborted``
        instead, which looks like an outage and is retried forever. Left to propagate, the
        ``UniqueViolation`` itself rolls the transaction back and becomes an ``IntegrityError``.
        """
        # The library's database-function variant is not taken: it would skip the tracking
        # row and the record index, which are this class's reason to exist.
        with (
            self.datastore.get_connection() as conn,
            conn.pipeline() as pipeline,
            conn.transaction(),
        ):
            with conn.cursor() as curs:
                self._insert_events(curs, stored_events, **kwargs)
            if not stored_events:
                return None  # as the library: only a tracking row, committed on leaving
            # A cursor of its own, as in the library: its results are the inserted ids.
            with conn.cursor() as curs:
                self._insert_stored_events(curs, stored_events, **kwargs)
                pipeline.sync()
                return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        super()._insert_events(curs, stored_events, **kwargs)
        entries: list[RecordIndexEntry] = kwargs.get("record_index") or []
        for entry in entries:
            if _count(entry):
                curs.execute(
                    SQL(
                        "INSERT INTO {0} SELECT substring(%(ids)s FROM i * 16 + 1 FOR 16), "
                        "%(oid)s, %(version)s FROM generate_series(0, %(count)s::integer - 1) AS i"
                    ).format(self._records_table()),
                    {"ids": entry[2], "oid": entry[0], "version": entry[1], "count": _count(entry)},
                )

    def existing_record_ids(self, record_ids: Iterable[str]) -> set[str]:
        ids = [bytes.fromhex(r) for r in record_ids]
        if not ids:
            return set()
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT record_id FROM {0} WHERE record_id = ANY(%s)").format(
                    self._records_table()
                ),
                [ids],
            )
            return {bytes(row["record_id"]).hex() for row in curs.fetchall()}

    def locate_record(self, record_id: str) -> tuple[UUID, int] | None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL(
                    "SELECT originator_id, originator_version FROM {0} WHERE record_id = %s"
                ).format(self._records_table()),
                [bytes.fromhex(record_id)],
            )
            row = curs.fetchone()
        return None if row is None else (row["originator_id"], int(row["originator_version"]))
