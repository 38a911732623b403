"""The governed store (three regions' datasets, partners and agreements) the delivery tests of
a module share, on SQLite and then PostgreSQL."""

from __future__ import annotations

import pytest

from storage.object_store_factory import open_object_store
from tests.integration.api.governed import GovernedStore, store_governed
from tests.support import stores

event_store_url = stores.event_store_url


@pytest.fixture(scope="module")
def governed(event_store_url: str, tmp_path_factory: pytest.TempPathFactory) -> GovernedStore:
    objects = open_object_store((tmp_path_factory.mktemp("governed") / "objects").as_uri())
    return store_governed(event_store_url, objects)
