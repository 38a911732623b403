"""The event store that a module of integration tests runs against: SQLite, then PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.support.services import fresh_postgres_url

BACKENDS = ["sqlite", "postgres"]


@contextmanager
def empty_store(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of an empty event store of ``backend``, dropped afterwards (PostgreSQL)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'events.sqlite'}"
        return
    with fresh_postgres_url() as url:
        yield url


@pytest.fixture(scope="module", params=BACKENDS)
def event_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with empty_store(request.param, tmp_path_factory) as url:
        yield url
