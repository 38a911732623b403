"""The event store that a module of integration tests runs against: SQLite, then PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.services import fresh_postgres_url


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def event_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'events.sqlite'}"
        return
    with fresh_postgres_url() as url:
        yield url
