"""Tampering with a stored event log directly in its database (SQLite or PostgreSQL), as an
attacker with write access to the store would, and putting it back afterwards."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg


@dataclass(frozen=True)
class StoredRow:
    position: int
    originator_id: Any
    originator_version: int
    topic: str
    state: bytes


class StoreTamperer:
    """Row-level access to the events table of a baylink store, by log position."""

    def __init__(self, url: str) -> None:
        self._sqlite = url.startswith("sqlite:///")
        if self._sqlite:
            self._table, self._id = "stored_events", "rowid"
            self._connection: Any = sqlite3.connect(url.removeprefix("sqlite:///"))
        else:
            self._table, self._id = "baylink_events", "notification_id"
            self._connection = psycopg.connect(url, autocommit=True)
        self._mark = "?" if self._sqlite else "%s"

    def close(self) -> None:
        self._connection.close()

    def _run(self, sql: str, *params: Any) -> list[Any]:
        sql = sql.replace("?", self._mark)
        cursor = self._connection.execute(sql, params)
        rows = cursor.fetchall() if cursor.description else []
        if self._sqlite:
            self._connection.commit()
        return list(rows)

    def rows(self) -> list[StoredRow]:
        found = self._run(
            f"SELECT {self._id}, originator_id, originator_version, topic, state "
            f"FROM {self._table} ORDER BY {self._id}"
        )
        return [StoredRow(p, o, v, t, bytes(s)) for p, o, v, t, s in found]

    def row(self, position: int) -> StoredRow:
        ((p, o, v, t, s),) = self._run(
            f"SELECT {self._id}, originator_id, originator_version, topic, state "
            f"FROM {self._table} WHERE {self._id} = ?",
            position,
        )
        return StoredRow(p, o, v, t, bytes(s))

    def insert(self, row: StoredRow) -> None:
        """``row`` at its position, which must be free."""
        self._run(
            f"INSERT INTO {self._table} ({self._id}, originator_id, originator_version, topic, "
            "state) VALUES (?, ?, ?, ?, ?)",
            row.position,
            row.originator_id,
            row.originator_version,
            row.topic,
            row.state,
        )

    def shift_up(self, first: int, last: int) -> None:
        """Move the rows at ``first``..``last`` one position up, overwriting the row at
        ``last + 1`` and freeing ``first`` for an inserted one."""
        self.delete_range(last + 1, last + 1)
        # Negated first, so no moved row ever lands on a position still taken.
        self._run(
            f"UPDATE {self._table} SET {self._id} = -({self._id} + 1) "
            f"WHERE {self._id} BETWEEN ? AND ?",
            first,
            last,
        )
        self._run(f"UPDATE {self._table} SET {self._id} = -{self._id} WHERE {self._id} < 0")

    def delete_range(self, first: int, last: int) -> None:
        self._run(f"DELETE FROM {self._table} WHERE {self._id} BETWEEN ? AND ?", first, last)

    def set_state(self, position: int, state: bytes) -> None:
        self._run(f"UPDATE {self._table} SET state = ? WHERE {self._id} = ?", state, position)

    def delete(self, position: int) -> None:
        self._run(f"DELETE FROM {self._table} WHERE {self._id} = ?", position)

    def restore(self, row: StoredRow) -> None:
        self.delete(row.position)
        self.insert(row)

    @contextmanager
    def undone(self, *positions: int) -> Iterator[None]:
        """Whatever is done to these positions inside the block is put back after it."""
        saved = [self.row(p) for p in positions]
        try:
            yield
        finally:
            for row in saved:
                self.restore(row)

    @contextmanager
    def range_undone(self, first: int, last: int) -> Iterator[None]:
        """Whatever is done to the positions ``first``..``last`` inside the block (rows moved,
        removed or added among them) is put back after it."""
        saved = self._run(
            f"SELECT {self._id}, originator_id, originator_version, topic, state "
            f"FROM {self._table} WHERE {self._id} BETWEEN ? AND ?",
            first,
            last,
        )
        try:
            yield
        finally:
            self.delete_range(first, last)
            for p, o, v, t, s in saved:
                self.insert(StoredRow(p, o, v, t, bytes(s)))
