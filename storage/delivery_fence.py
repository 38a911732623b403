"""A fence between deliveries and the governance changes that can end them.

Every page the delivery relay sends (Kafka, webhooks) is decided and sent while holding the
fence shared;
suspending or revoking an agreement and withdrawing a whitelist rule are recorded holding it
exclusively. So once such a change has returned, every page decided under the old grant has
been sent, and every later page is decided under the new one: nothing reaches the partner
under a grant that has ended. Streams served by the API (SSE, WebSocket) do not hold it, as a
client that reads slowly would hold back the revocation: they ask again before each chunk of
records instead, so at most one chunk decided before a revocation is written after it.

The fence lives where the store does: an advisory lock of the PostgreSQL database (relays and
APIs on several machines share it), or a lock file beside the SQLite file (one machine).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import psycopg
from psycopg import sql

from storage.event_store import environment_for

# A fixed 64-bit key naming this lock among the database's advisory locks.
_ADVISORY_KEY = 0x6261796C696E6B01


class DeliveryFence(Protocol):
    def delivering(self) -> AbstractContextManager[None]:
        """Held shared while one page is decided and sent."""
        ...

    def changing(self) -> AbstractContextManager[None]:
        """Held exclusively while a change that can end a grant is recorded."""
        ...


class FileFence:
    """flock on a file beside the SQLite database: each use opens its own descriptor, so
    holders in one process are as separate as holders in several."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, mode)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock

    def delivering(self) -> AbstractContextManager[None]:
        return self._locked(fcntl.LOCK_SH)

    def changing(self) -> AbstractContextManager[None]:
        return self._locked(fcntl.LOCK_EX)


class PostgresFence:
    """A session advisory lock, on a connection of its own per use."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo

    @contextmanager
    def _locked(self, lock: str, unlock: str) -> Iterator[None]:
        with psycopg.connect(self.conninfo, autocommit=True) as connection:
            connection.execute(_call(lock), [_ADVISORY_KEY])
            try:
                yield
            finally:
                connection.execute(_call(unlock), [_ADVISORY_KEY])

    def delivering(self) -> AbstractContextManager[None]:
        return self._locked("pg_advisory_lock_shared", "pg_advisory_unlock_shared")

    def changing(self) -> AbstractContextManager[None]:
        return self._locked("pg_advisory_lock", "pg_advisory_unlock")


def _call(function: str) -> sql.Composed:
    return sql.SQL("SELECT {}(%s)").format(sql.Identifier(function))


def fence_for(event_store_url: str) -> DeliveryFence:
    env = environment_for(event_store_url)
    if env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        return FileFence(Path(env["SQLITE_DBNAME"] + ".delivery-fence"))
    return PostgresFence(
        psycopg.conninfo.make_conninfo(
            dbname=env["POSTGRES_DBNAME"],
            host=env["POSTGRES_HOST"],
            port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"],
            password=env["POSTGRES_PASSWORD"],
            connect_timeout=env["POSTGRES_CONNECT_TIMEOUT"],
        )
    )
