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
        (found,) = [r for r in self.rows() if r.position == position]
        return found

    def set_state(self, position: int, state: bytes) -> None:
        self._run(f"UPDATE {self._table} SET state = ? WHERE {self._id} = ?", state, position)

    def delete(self, position: int) -> None:
        self._run(f"DELETE FROM {self._table} WHERE {self._id} = ?", position)

    def restore(self, row: StoredRow) -> None:
        self.delete(row.position)
        self._run(
            f"INSERT INTO {self._table} ({self._id}, originator_id, originator_version, topic, "
            "state) VALUES (?, ?, ?, ?, ?)",
            row.position,
            row.originator_id,
            row.originator_version,
            row.topic,
            row.state,
        )

    @contextmanager
    def undone(self, *positions: int) -> Iterator[None]:
        """Whatever is done to these positions inside the block is put back after it."""
        saved = [self.row(p) for p in positions]
        try:
            yield
        finally:
            for row in saved:
                self.restore(row)
