"""From an event-store URL to the eventsourcing environment, or an error naming the URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.errors import EventStoreUrlError
from storage.event_store import environment_for


def test_a_sqlite_url_names_a_database_file_and_creates_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "var" / "baylink" / "events.sqlite"

    env = environment_for(f"sqlite:///{path}")

    assert env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    assert env["SQLITE_DBNAME"] == str(path)
    assert env["PROCESS_RECORDER_TOPIC"] == "storage.recorders:SQLiteLedgerRecorder"
    assert env["TRANSCODER_TOPIC"] == "storage.transcoder:MsgpackTranscoder"
    assert path.parent.is_dir()


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_postgresql_url_gives_host_port_database_and_credentials(scheme: str) -> None:
    env = environment_for(f"{scheme}://ingest:p%40ss@db.example.hk:6543/baylink%20ledger")

    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert env["POSTGRES_HOST"] == "db.example.hk"
    assert env["POSTGRES_PORT"] == "6543"
    assert env["POSTGRES_DBNAME"] == "baylink ledger"
    assert env["POSTGRES_USER"] == "ingest"
    assert env["POSTGRES_PASSWORD"] == "p@ss"
    assert env["PROCESS_RECORDER_TOPIC"] == "storage.recorders:PostgresLedgerRecorder"


def test_a_postgresql_url_without_port_or_user_uses_the_defaults() -> None:
    env = environment_for("postgresql://127.0.0.1/baylink")

    assert (env["POSTGRES_PORT"], env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == (
        "5432",
        "postgres",
        "",
    )


@pytest.mark.parametrize(
    "url",
    [
        "",
        "events.sqlite",
        "sqlite://events.sqlite",
        "sqlite:///",
        "sqlite:///.",
        "mysql://db.example.hk/baylink",
        "postgresql://db.example.hk",
        "postgresql://db.example.hk/",
        "postgresql:///baylink",
        "file:///var/baylink/events.sqlite",
    ],
)
def test_an_unusable_url_is_refused_with_the_url_named(url: str) -> None:
    with pytest.raises(EventStoreUrlError) as refused:
        environment_for(url)

    assert repr(url) in str(refused.value)
