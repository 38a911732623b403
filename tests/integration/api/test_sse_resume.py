"""Server-sent events deliver exactly a subscription's grant, resume after the last event a
client received wherever it hung up, and stop the moment an agreement is revoked."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.subscription_stream import StreamTiming
from domain.provenance import Provenance
from storage.catalog import Catalog
from storage.ingestion import IngestLedger
from streams import wire
from streams.processor import IngestProcessor
from tests.integration.api.conftest import app_over, bearer, serving_governed
from tests.integration.api.governed import (
    DATASETS,
    GZ_BUREAU,
    GZ_WINDOW,
    HK,
    HK_DEPT,
    MO_DSAT,
    START,
    SZ,
    GovernedStore,
    expected_ids,
    govern,
    revoke,
)
from tests.integration.api.readings import as_record
from tests.integration.api.sse_client import (
    Listener,
    SseComment,
    SseEvent,
    first_lines,
    sse_events,
)
from tests.support.live_server import live_server
from tests.support.platform import reading_rows

pytestmark = pytest.mark.integration

MANY = 50_000
PER_MESSAGE = 500
DISCONNECTS = 20


def store_rows(url: str, dataset_id: str, rows: list[dict[str, Any]], first_message: int) -> None:
    """Ingest ``rows`` into the dataset, PER_MESSAGE a message, as the stream processor does."""
    dataset = DATASETS[dataset_id]
    catalog, ledger = Catalog(url), IngestLedger(url)
    try:
        processor = IngestProcessor(ledger, catalog, clock=lambda: START + timedelta(days=1))
        for n, first in enumerate(range(0, len(rows), PER_MESSAGE), start=first_message):
            provenance = Provenance(
                f"file:///{dataset_id}-{n}.csv", START, f"{n % 100:02d}" * 32, "tabular", "1",
                dataset.owner_region, wire.WIRE_SCHEMA_VERSION,
            )  # fmt: skip
            outcome = processor.process(
                dataset.ingest_topic,
                n % dataset.partitions,
                n // dataset.partitions,
                wire.encode_rows(rows[first : first + PER_MESSAGE]),
                wire.headers_for(wire.KIND_RECORDS, dataset_id, provenance, None),
            )
            assert outcome.rejected == 0
    finally:
        ledger.close()
        catalog.close()


@dataclass
class Served:
    app: FastAPI
    url: str
    store: GovernedStore
    event_store_url: str


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """50,000 readings of the Shenzhen dataset under the governed agreements, served live."""
    directory = tmp_path_factory.mktemp("many")
    url = f"sqlite:///{directory / 'events.sqlite'}"
    catalog = Catalog(url)
    try:
        catalog.register(DATASETS[SZ])
    finally:
        catalog.close()
    rows = reading_rows(MANY, prefix="gd-shenzhen-", start=START)
    store_rows(url, SZ, rows, 0)
    store = GovernedStore({SZ: [as_record(DATASETS[SZ], r) for r in rows]}, govern(url))
    with (
        app_over(url, (directory / "objects").as_uri()) as app,
        live_server(app) as base_url,
    ):
        yield Served(app, base_url, store, url)


@pytest.fixture
def governed_live(tmp_path: Path) -> Iterator[Served]:
    with serving_governed(tmp_path) as served, live_server(served.app) as base_url:
        yield Served(served.app, base_url, served.store, served.event_store_url)


async def _subscribe(client: httpx.AsyncClient, key: str, dataset_id: str) -> str:
    created = await client.post(
        "/v1/subscriptions", json={"dataset_id": dataset_id, "channel": "sse"}, headers=bearer(key)
    )
    assert created.status_code == 201, created.text
    sid: str = created.json()["subscription_id"]
    return sid


def _order(event_id: str) -> tuple[int, int]:
    position, _, ordinal = event_id.partition(":")
    return int(position), int(ordinal)


@dataclass
class Received:
    event_id: str
    record_id: str
    position: int


def _record(event: SseEvent) -> Received:
    assert event.event == "record"
    assert event.last_id is not None
    cloud = json.loads(event.data)
    assert cloud["id"] == cloud["data"]["record_id"]
    assert _order(event.last_id)[0] == cloud["position"]
    return Received(event.last_id, cloud["id"], cloud["position"])


async def _events(
    client: httpx.AsyncClient, sid: str, key: str, last_id: str | None = None
) -> AsyncIterator[SseEvent | SseComment]:
    headers = bearer(key) | ({"Last-Event-ID": last_id} if last_id else {})
    async with client.stream("GET", f"/v1/subscriptions/{sid}/events", headers=headers) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        async for item in sse_events(answer.aiter_lines(), last_id):
            yield item


async def _take_records(listener: Listener, count: int, within: float) -> list[Received]:
    found: list[Received] = []
    deadline = time.monotonic() + within
    while len(found) < count:
        item = await listener.next(deadline - time.monotonic())
        if isinstance(item, SseEvent):
            found.append(_record(item))
    return found


def _sse(items: list[SseEvent | SseComment]) -> list[SseEvent]:
    return [item for item in items if isinstance(item, SseEvent)]


@pytest.mark.parametrize(("partner", "dataset_id"), [(HK_DEPT, SZ), (MO_DSAT, SZ), (GZ_BUREAU, HK)])
async def test_a_stream_delivers_exactly_the_grant(
    governed_live: Served, partner: str, dataset_id: str
) -> None:
    key = governed_live.store.keys[partner]
    expected = expected_ids(governed_live.store, partner, dataset_id, {})
    async with httpx.AsyncClient(base_url=governed_live.url, timeout=30) as client:
        sid = await _subscribe(client, key, dataset_id)
        events = Listener(_events(client, sid, key))

        received = await _take_records(events, len(expected), within=60)
        # Nothing beyond the grant follows: the stream idles.
        extra = _sse(await events.within(1.0))
        await events.close()

        ids = [r.record_id for r in received]
        assert sorted(ids) == sorted(expected)
        assert extra == []
        shown = (await client.get(f"/v1/subscriptions/{sid}", headers=bearer(key))).json()
    progress = shown["delivery"]
    # A stream's progress is the end of the last page that carried records.
    assert max(r.position for r in received) <= progress["delivered_position"]
    assert progress["delivered_position"] <= progress["head_position"]
    assert progress["lag"] == progress["head_position"] - progress["delivered_position"]
    assert progress["records_last_minute"] == len(expected)


async def test_a_client_that_hangs_up_anywhere_resumes_with_the_next_record(
    many: Served,
) -> None:
    key = many.store.keys[HK_DEPT]
    expected = expected_ids(many.store, HK_DEPT, SZ, {})
    # Each record is four lines (id, event, data, blank): hang up anywhere, mid-event too.
    lines_total = 4 * len(expected) + 1
    cuts = sorted(random.Random(20261128).sample(range(2, lines_total), DISCONNECTS))
    budgets = [b - a for a, b in zip([0, *cuts[:-1]], cuts, strict=True)]
    received: list[Received] = []
    connections = 0
    began = time.monotonic()
    # A stream that skipped a record would wait for it for ever: fail instead.
    async with asyncio.timeout(180), httpx.AsyncClient(base_url=many.url, timeout=60) as client:
        sid = await _subscribe(client, key, SZ)
        last_id: str | None = None
        while len(received) < len(expected):
            connections += 1
            budget = budgets[connections - 1] if connections <= len(budgets) else -1
            headers = bearer(key) | ({"Last-Event-ID": last_id} if last_id else {})
            url = f"/v1/subscriptions/{sid}/events"
            async with client.stream("GET", url, headers=headers) as answer:
                assert answer.status_code == 200
                lines = answer.aiter_lines()
                if budget >= 0:
                    lines = first_lines(lines, budget)
                async for item in sse_events(lines, last_id):
                    if isinstance(item, SseEvent):
                        record = _record(item)
                        received.append(record)
                        last_id = record.event_id
                        if len(received) == len(expected):
                            break
        elapsed = time.monotonic() - began

    ids = [r.record_id for r in received]
    assert connections == DISCONNECTS + 1
    assert len(ids) == len(set(ids)), "a record arrived twice"
    assert set(ids) == set(expected)
    order = [_order(r.event_id) for r in received]
    assert all(a < b for a, b in itertools.pairwise(order)), "ids went backwards"
    print(f"{len(expected)} records of {MANY} over {connections} connections in {elapsed:.1f}s")


async def test_a_revoked_agreement_stops_an_open_stream(governed_live: Served) -> None:
    key = governed_live.store.keys[GZ_BUREAU]
    expected = expected_ids(governed_live.store, GZ_BUREAU, HK, {})
    # Rows inside the agreement's window, so the grant would reach them.
    window = GZ_WINDOW[0] + timedelta(seconds=1)
    before = [r | {"observed_at": window + timedelta(milliseconds=i)} for i, r in enumerate(
        reading_rows(40, prefix="hk-live-a-", start=window))]  # fmt: skip
    after = reading_rows(40, prefix="hk-live-b-", start=window + timedelta(seconds=50))
    async with httpx.AsyncClient(base_url=governed_live.url, timeout=30) as client:
        sid = await _subscribe(client, key, HK)
        events = Listener(_events(client, sid, key))
        assert len(await _take_records(events, len(expected), within=30)) == len(expected)

        # Delivery is live: records stored now arrive on the open stream.
        await asyncio.to_thread(store_rows, governed_live.event_store_url, HK, before, 100)
        live = await _take_records(events, len(before), within=10)
        assert {r.record_id for r in live} == {
            as_record(DATASETS[HK], row)["record_id"] for row in before
        }

        revoke(governed_live.event_store_url, "hk-gz-traffic", "hk", "the bureau asked to end it")
        await asyncio.to_thread(store_rows, governed_live.event_store_url, HK, after, 200)

        seen = _sse(await events.within(2.0))
        await events.close()
    assert [e.event for e in seen] == ["paused"]
    assert "hk-gz-traffic" in json.loads(seen[0].data)["reason"]


async def test_a_paused_subscription_says_so_and_sends_what_arrived_meanwhile_on_resume(
    governed_live: Served,
) -> None:
    governed_live.app.state.stream_timing = StreamTiming(poll_seconds=0.1, heartbeat_seconds=0.3)
    key = governed_live.store.keys[GZ_BUREAU]
    expected = expected_ids(governed_live.store, GZ_BUREAU, HK, {})
    meanwhile = reading_rows(30, prefix="hk-paused-", start=GZ_WINDOW[0] + timedelta(seconds=5))
    async with httpx.AsyncClient(base_url=governed_live.url, timeout=30) as client:
        sid = await _subscribe(client, key, HK)
        events = Listener(_events(client, sid, key))
        await _take_records(events, len(expected), within=30)
        idle = await events.within(1.0)
        assert any(isinstance(item, SseComment) for item in idle), "no heartbeat while idle"

        paused = await client.post(
            f"/v1/subscriptions/{sid}/pause", json={"reason": "night"}, headers=bearer(key)
        )
        assert paused.status_code == 200
        await asyncio.to_thread(store_rows, governed_live.event_store_url, HK, meanwhile, 300)
        while_paused = _sse(await events.within(1.5))
        assert [(e.event, json.loads(e.data)["reason"]) for e in while_paused] == [
            ("paused", "the subscription is paused: night")
        ]

        resumed = await client.post(f"/v1/subscriptions/{sid}/resume", headers=bearer(key))
        assert resumed.status_code == 200
        arrived = await _take_records(events, len(meanwhile), within=10)
        await events.close()
    assert {r.record_id for r in arrived} == {
        as_record(DATASETS[HK], row)["record_id"] for row in meanwhile
    }


async def test_a_client_that_stops_reading_does_not_hold_up_another(many: Served) -> None:
    slow_key, fast_key = many.store.keys[MO_DSAT], many.store.keys[HK_DEPT]
    expected = expected_ids(many.store, HK_DEPT, SZ, {})
    async with httpx.AsyncClient(base_url=many.url, timeout=60) as client:
        slow_sid, fast_sid = (
            await _subscribe(client, slow_key, SZ),
            await _subscribe(client, fast_key, SZ),
        )
        slow = _events(client, slow_sid, slow_key)
        # One record read, then nothing: the server's sends to it back up.
        assert isinstance(await anext(slow), SseEvent)
        began = time.monotonic()
        fast = Listener(_events(client, fast_sid, fast_key))
        received = await _take_records(fast, len(expected), within=120)
        elapsed = time.monotonic() - began
        await fast.close()
        await slow.aclose()  # type: ignore[attr-defined]
    assert len({r.record_id for r in received}) == len(expected)
    print(f"{len(expected)} records beside a stalled stream in {elapsed:.1f}s")
