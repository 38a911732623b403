"""From an event-store URL to the environment the eventsourcing library reads.

``sqlite:///relative/path.sqlite`` and ``sqlite:////absolute/path.sqlite`` (SQLite, WAL) are
the embedded default; ``postgresql://user:password@host:port/database`` is production.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from storage.errors import EventStoreUrlError

APPLICATION_NAME = "baylink"


def environment_for(url: str) -> dict[str, str]:
    """Settings for every baylink eventsourcing application sharing one store."""
    common = {
        "TRANSCODER_TOPIC": "storage.transcoder:MsgpackTranscoder",
        "SINGLE_ROW_TRACKING": "t",
    }
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not str(path) or str(path) == ".":
            raise EventStoreUrlError(f"event-store URL {url!r} names no database file")
        path.parent.mkdir(parents=True, exist_ok=True)
        return {
            **common,
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(path),
            "SQLITE_LOCK_TIMEOUT": "30",
            "PROCESS_RECORDER_TOPIC": "storage.recorders:SQLiteLedgerRecorder",
        }
    parts = urlsplit(url)
    if parts.scheme in ("postgresql", "postgres"):
        database = parts.path.lstrip("/")
        if not database or not parts.hostname:
            raise EventStoreUrlError(f"event-store URL {url!r} must name a host and a database")
        return {
            **common,
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": unquote(database),
            "POSTGRES_HOST": parts.hostname,
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_POOL_SIZE": "4",
            "POSTGRES_MAX_OVERFLOW": "4",
            "POSTGRES_CONNECT_TIMEOUT": "10",
            "PROCESS_RECORDER_TOPIC": "storage.recorders:PostgresLedgerRecorder",
        }
    raise EventStoreUrlError(
        f"event-store URL {url!r} is neither sqlite:///PATH nor postgresql://HOST/DATABASE"
    )
