"""Connector checkpoints survive a reopen of the store, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.connector_checkpoints import ConnectorCheckpoints
from storage.ingestion import IngestLedger
from tests.support.services import fresh_postgres_url

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgres"])
def event_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'events.sqlite'}"
        return
    with fresh_postgres_url() as url:
        yield url


def test_a_saved_checkpoint_is_read_back_after_the_store_is_reopened(event_store_url: str) -> None:
    first = ConnectorCheckpoints(event_store_url)
    first.put("feed", "", {"etag": '"abc"', "last_modified": None, "sha256": "00" * 32})
    first.put("dir", "a.csv", {"size": 10, "mtime_ns": 1, "sha256": "11" * 32})
    first.put("dir", "b.csv", {"size": 20, "mtime_ns": 2, "sha256": "22" * 32})
    first.close()

    reopened = ConnectorCheckpoints(event_store_url)
    try:
        assert reopened.get("feed") == {"etag": '"abc"', "last_modified": None, "sha256": "00" * 32}
        assert reopened.load("dir") == {
            "a.csv": {"size": 10, "mtime_ns": 1, "sha256": "11" * 32},
            "b.csv": {"size": 20, "mtime_ns": 2, "sha256": "22" * 32},
        }
        assert reopened.get("never-ran") is None
        assert reopened.load("never-ran") == {}
    finally:
        reopened.close()


def test_saving_again_replaces_the_checkpoint_of_that_item_only(event_store_url: str) -> None:
    checkpoints = ConnectorCheckpoints(event_store_url)
    try:
        checkpoints.put("dir", "a.csv", {"size": 10})
        checkpoints.put("dir", "b.csv", {"size": 20})
        checkpoints.put("dir", "a.csv", {"size": 11})
        assert checkpoints.load("dir") == {"a.csv": {"size": 11}, "b.csv": {"size": 20}}
    finally:
        checkpoints.close()


def test_checkpoints_share_the_store_with_the_ledger_without_touching_its_log(
    event_store_url: str,
) -> None:
    ledger = IngestLedger(event_store_url)
    checkpoints = ConnectorCheckpoints(event_store_url)
    try:
        before = ledger.position()
        checkpoints.put("feed", "", {"etag": "x"})
        assert ledger.position() == before
        assert checkpoints.get("feed") == {"etag": "x"}
    finally:
        checkpoints.close()
        ledger.close()
