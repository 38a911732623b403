"""One store of 10,000 readings per object store (local directory and S3 on SeaweedFS) and
event store (SQLite and PostgreSQL), part snapshotted and part in the tail, served in-process
by the baylink API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from api.app import create_app
from api.services import QueryServiceProvider
from api.settings import ApiSettings
from storage.object_store_factory import open_object_store
from tests.integration.api.governed import GovernedStore, store_governed
from tests.integration.api.readings import StoredReadings, store_readings
from tests.support.credentials import ADMIN, ADMIN_TOKEN
from tests.support.services import (
    S3Endpoint,
    fresh_postgres_url,
)


@dataclass
class ServedReadings:
    """The API over the stored readings, and what was stored."""

    app: FastAPI
    stored: StoredReadings
    object_store_url: str


def _object_store_url(
    kind: str, request: pytest.FixtureRequest, tmp: pytest.TempPathFactory
) -> tuple[str, dict[str, str]]:
    if kind == "local":
        return (tmp.mktemp("objects") / "store").as_uri(), {}
    seaweed: S3Endpoint = request.getfixturevalue("seaweed")
    env = {"AWS_ACCESS_KEY_ID": seaweed.access_key, "AWS_SECRET_ACCESS_KEY": seaweed.secret_key}
    return f"s3://baylink-api-test?endpoint={seaweed.endpoint}", env


@contextmanager
def _event_store_url(kind: str, tmp: pytest.TempPathFactory) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp.mktemp('events') / 'events.sqlite'}"
        return
    with fresh_postgres_url() as url:
        yield url


@pytest.fixture(
    scope="session",
    params=[("local", "sqlite"), ("s3", "sqlite"), ("local", "postgres")],
    ids=["local-sqlite", "s3-sqlite", "local-postgres"],
)
def served_readings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedReadings]:
    """Readings stored in the event store and snapshotted to the object store, and an app
    serving them."""
    store_kind, event_store_kind = request.param
    object_store_url, env = _object_store_url(store_kind, request, tmp_path_factory)
    with (
        _event_store_url(event_store_kind, tmp_path_factory) as event_store_url,
        pytest.MonkeyPatch.context() as patch,
    ):
        # The S3 store reads its credentials from the environment whenever the API opens it
        # (again after a shutdown, which schemathesis's client runs).
        for name, value in env.items():
            patch.setenv(name, value)
        stored = store_readings(event_store_url, open_object_store(object_store_url))
        app = create_app(
            ApiSettings(
                event_store_url=event_store_url,
                object_store_url=object_store_url,
                admin_token=SecretStr(ADMIN_TOKEN),
            )
        )
        provider = app.state.query_service
        assert isinstance(provider, QueryServiceProvider)
        try:
            yield ServedReadings(app, stored, object_store_url)
        finally:
            provider.close()


@pytest.fixture
async def api(served_readings: ServedReadings) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=served_readings.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://baylink", headers=ADMIN
    ) as client:
        yield client


@pytest.fixture
def stored(served_readings: ServedReadings) -> StoredReadings:
    return served_readings.stored


@dataclass
class ServedGoverned:
    """The API over three regions' datasets shared under agreements, and what was stored."""

    app: FastAPI
    store: GovernedStore
    event_store_url: str
    object_store_url: str


@contextmanager
def serving_governed(
    directory: Path, event_store_url: str | None = None, **settings: Any
) -> Iterator[ServedGoverned]:
    """The governed store in ``directory`` (events there too unless ``event_store_url`` says
    otherwise) and an app over it (extra ApiSettings allowed)."""
    event_store_url = event_store_url or f"sqlite:///{directory / 'events.sqlite'}"
    object_store_url = (directory / "objects").as_uri()
    store = store_governed(event_store_url, open_object_store(object_store_url))
    with app_over(event_store_url, object_store_url, **settings) as app:
        yield ServedGoverned(app, store, event_store_url, object_store_url)


@contextmanager
def app_over(event_store_url: str, object_store_url: str, **settings: Any) -> Iterator[FastAPI]:
    """An app over the given stores with the test admin token, closed on the way out."""
    app = create_app(
        ApiSettings(
            event_store_url=event_store_url,
            object_store_url=object_store_url,
            admin_token=SecretStr(ADMIN_TOKEN),
            **settings,
        )
    )
    try:
        yield app
    finally:
        for provider in (
            app.state.query_service,
            app.state.governance,
            app.state.access_log,
            app.state.tree_heads,
            app.state.subscription_services,
        ):
            provider.close()


@pytest.fixture(scope="session")
def served_governed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGoverned]:
    # The request matrix runs far faster than any partner would.
    with serving_governed(
        tmp_path_factory.mktemp("governed"), rate_limit_per_second=1e6, rate_limit_burst=10**6
    ) as served:
        yield served


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_governed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServedGoverned]:
    """A governed store of the test's own, for tests that change agreements or the whitelist,
    on SQLite and on PostgreSQL."""
    factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
    with _event_store_url(request.param, factory) as url, serving_governed(tmp_path, url) as served:
        yield served


@asynccontextmanager
async def client_of(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of ``app`` without a credential: each request brings its own."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://baylink") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def governed_api(served_governed: ServedGoverned) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the governed API without a credential: each request brings its own."""
    async with client_of(served_governed.app) as client:
        yield client
