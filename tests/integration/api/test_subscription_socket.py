"""The WebSocket twin of the event stream: the same records as JSON frames, the same resume
points, the same credential on the upgrade request."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.integration.api.conftest import ServedGoverned, bearer, serving_governed
from tests.integration.api.governed import (
    GZ_BUREAU,
    GZ_WINDOW,
    HK,
    MO_DSAT,
    SZ,
    GovernedStore,
    expected_ids,
    revoke,
)
from tests.integration.api.test_sse_resume import store_rows
from tests.support.live_server import live_server
from tests.support.platform import reading_rows

pytestmark = pytest.mark.integration


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, GovernedStore]]:
    with serving_governed(tmp_path) as served, live_server(served.app) as base_url:
        yield base_url, served.store


async def _subscription(base_url: str, key: str, dataset_id: str, channel: str) -> str:
    async with httpx.AsyncClient(base_url=base_url) as client:
        created = await client.post(
            "/v1/subscriptions",
            json={"dataset_id": dataset_id, "channel": channel},
            headers=bearer(key),
        )
    assert created.status_code == 201, created.text
    sid: str = created.json()["subscription_id"]
    return sid


async def _frames(socket: ClientConnection, count: int) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(30):
        while len(frames) < count:
            frame = json.loads(await socket.recv())
            if frame["type"] == "record":
                frames.append(frame)
    return frames


async def test_a_socket_delivers_the_grant_and_resumes_after_the_last_frame(
    live: tuple[str, GovernedStore],
) -> None:
    base_url, store = live
    key = store.keys[GZ_BUREAU]
    expected = expected_ids(store, GZ_BUREAU, HK, {})
    sid = await _subscription(base_url, key, HK, "websocket")
    url = base_url.replace("http://", "ws://") + f"/v1/subscriptions/{sid}/ws"
    half = len(expected) // 2 + 7  # inside a log position: the resume point has an ordinal

    async with connect(f"{url}?after=0", additional_headers=bearer(key), max_queue=None) as socket:
        first = await _frames(socket, half)
    # The resume point sent as the first message instead of in the URL.
    async with connect(url, additional_headers=bearer(key), max_queue=None) as socket:
        await socket.send(json.dumps({"after": first[-1]["id"]}))
        rest = await _frames(socket, len(expected) - half)

    ids = [f["event"]["id"] for f in first + rest]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(expected)
    assert all(f["event"]["agreementid"] == "hk-gz-traffic" for f in first + rest)
    assert ":" in first[-1]["id"]


async def test_a_socket_needs_the_owners_credential_and_the_websocket_channel(
    live: tuple[str, GovernedStore],
) -> None:
    base_url, store = live
    sid = await _subscription(base_url, store.keys[GZ_BUREAU], HK, "websocket")
    sse = await _subscription(base_url, store.keys[MO_DSAT], SZ, "sse")
    ws = base_url.replace("http://", "ws://") + "/v1/subscriptions"

    for target, headers, status in [
        (sid, {}, 401),
        (sid, bearer("bl_not-a-key"), 401),
        (sid, bearer(store.keys[MO_DSAT]), 404),  # another partner's: as if there were none
        ("sub-none", bearer(store.keys[MO_DSAT]), 404),
        (sse, bearer(store.keys[MO_DSAT]), 409),
    ]:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{ws}/{target}/ws", additional_headers=headers):
                pass
        assert refused.value.response.status_code == status
        body = json.loads(refused.value.response.body or b"{}")
        assert body["status"] == status


async def test_a_revoked_agreement_stops_an_open_socket(tmp_path: Path) -> None:
    with serving_governed(tmp_path) as served, live_server(served.app) as base_url:
        await _revoke_while_open(served, base_url)


async def _revoke_while_open(served: ServedGoverned, base_url: str) -> None:
    key = served.store.keys[GZ_BUREAU]
    expected = expected_ids(served.store, GZ_BUREAU, HK, {})
    sid = await _subscription(base_url, key, HK, "websocket")
    url = base_url.replace("http://", "ws://") + f"/v1/subscriptions/{sid}/ws?after=0"
    # Rows inside the agreement's window, which the grant would reach.
    later = reading_rows(40, prefix="hk-socket-", start=GZ_WINDOW[0] + timedelta(seconds=3))
    async with connect(url, additional_headers=bearer(key), max_queue=None) as socket:
        assert len(await _frames(socket, len(expected))) == len(expected)
        revoke(served.event_store_url, "hk-gz-traffic", "hk", "the bureau asked to end it")
        await asyncio.to_thread(store_rows, served.event_store_url, HK, later, 500)
        after: list[dict[str, Any]] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                while True:
                    after.append(json.loads(await socket.recv()))

    told = [f for f in after if f["type"] != "heartbeat"]
    assert [f["type"] for f in told] == ["paused"]
    assert "hk-gz-traffic" in told[0]["reason"]
