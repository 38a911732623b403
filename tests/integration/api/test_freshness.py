"""Answers follow the store: records stored after a query appear in the next one, and a
snapshot taken in between moves them out of the tail without doubling or losing any."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from api.app import create_app
from api.services import QueryServiceProvider
from api.settings import ApiSettings
from storage.catalog import Catalog
from storage.ingestion import IngestLedger
from storage.object_store_local import LocalObjectStore
from storage.snapshots import SnapshotBuilder, SnapshotLedger
from streams import wire
from streams.processor import IngestProcessor
from tests.integration.api.readings import NOW, message_provenance, sensor_readings
from tests.support.credentials import ADMIN, ADMIN_TOKEN
from tests.support.platform import reading_rows

pytestmark = pytest.mark.integration

RECORDS = "/v1/datasets/gba.traffic.sensor-readings/records"


@dataclass
class LiveStore:
    """A store that the test keeps writing to while the API reads it."""

    processor: IngestProcessor
    builder: SnapshotBuilder
    offset: int = 0

    def ingest(self, count: int, prefix: str) -> None:
        dataset = sensor_readings()
        rows = reading_rows(count, prefix=prefix, start=datetime(2026, 11, 26, tzinfo=UTC))
        headers = wire.headers_for(
            wire.KIND_RECORDS, dataset.id, message_provenance(self.offset), None
        )
        self.processor.process(
            dataset.ingest_topic, 0, self.offset, wire.encode_rows(rows), headers
        )
        self.offset += 1


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[LiveStore, ApiSettings]]:
    url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    catalog, ledger, snapshots = Catalog(url), IngestLedger(url), SnapshotLedger(url)
    catalog.register(sensor_readings())
    store = LocalObjectStore(tmp_path / "objects")
    processor = IngestProcessor(ledger, catalog, clock=lambda: NOW)
    try:
        yield (
            LiveStore(processor, SnapshotBuilder(snapshots, catalog, store)),
            ApiSettings(
                event_store_url=url,
                object_store_url=str(tmp_path / "objects"),
                admin_token=SecretStr(ADMIN_TOKEN),
            ),
        )
    finally:
        for application in (snapshots, ledger, catalog):
            application.close()


@pytest.fixture
async def live_api(live: tuple[LiveStore, ApiSettings]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(live[1])
    provider = app.state.query_service
    assert isinstance(provider, QueryServiceProvider)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://baylink", headers=ADMIN
        ) as client:
            yield client
    finally:
        provider.close()


async def record_ids(api: httpx.AsyncClient) -> list[str]:
    body = (await api.get(RECORDS, params={"limit": 10_000, "fields": "record_id"})).json()
    return [record["record_id"] for record in body["records"]]


async def test_records_stored_after_a_query_appear_in_the_next_one(
    live: tuple[LiveStore, ApiSettings], live_api: httpx.AsyncClient
) -> None:
    store, _ = live
    assert await record_ids(live_api) == []
    store.ingest(300, "a")
    assert len(await record_ids(live_api)) == 300

    store.ingest(200, "b")

    assert len(set(await record_ids(live_api))) == 500


async def test_a_snapshot_between_queries_neither_doubles_nor_loses_a_record(
    live: tuple[LiveStore, ApiSettings], live_api: httpx.AsyncClient
) -> None:
    store, _ = live
    store.ingest(300, "a")
    before = await record_ids(live_api)

    store.builder.run_once()
    store.ingest(200, "b")
    after_snapshot = await record_ids(live_api)
    store.builder.run_once()
    after_second = await record_ids(live_api)

    assert len(before) == 300
    assert len(after_snapshot) == len(set(after_snapshot)) == 500
    assert set(before) < set(after_snapshot)
    assert after_second == after_snapshot
