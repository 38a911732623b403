"""Requests about subscriptions are in the access log like data requests: who, which action,
which dataset and agreement, answered or refused; a server-sent stream is logged as it opens,
a WebSocket as it closes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.integration.api.conftest import ServedGoverned, bearer, serving_governed
from tests.integration.api.governed import HK_DEPT, MO_DSAT, SZ
from tests.support.credentials import ADMIN
from tests.support.live_server import live_server

pytestmark = pytest.mark.integration


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[ServedGoverned, str]]:
    with serving_governed(tmp_path) as served, live_server(served.app) as base_url:
        yield served, base_url


async def _subscription_accesses(client: httpx.AsyncClient, partner: str) -> list[tuple[Any, ...]]:
    answer = await client.get(
        "/v1/access-log", params={"partner": partner, "limit": 1000}, headers=ADMIN
    )
    answer.raise_for_status()
    return [
        (e["action"], e["allowed"], e["dataset_id"], e["agreement_id"], e["rows"])
        for e in answer.json()["entries"]
        if e["action"].startswith("subscription")
    ]


async def test_every_subscription_request_and_stream_is_logged(
    live: tuple[ServedGoverned, str],
) -> None:
    served, base_url = live
    key, mo_key = served.store.keys[HK_DEPT], served.store.keys[MO_DSAT]
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        created = await client.post(
            "/v1/subscriptions", json={"dataset_id": SZ, "channel": "sse"}, headers=bearer(key)
        )
        sid = created.json()["subscription_id"]
        socket = await client.post(
            "/v1/subscriptions", json={"dataset_id": SZ, "channel": "websocket"},
            headers=bearer(key),
        )  # fmt: skip
        socket_sid = socket.json()["subscription_id"]
        unknown = {"dataset_id": "xx.unknown.set", "channel": "sse"}
        await client.post("/v1/subscriptions", json=unknown, headers=bearer(key))
        await client.get("/v1/subscriptions", headers=bearer(key))
        await client.post(
            f"/v1/subscriptions/{sid}/pause", json={"reason": "night"}, headers=bearer(key)
        )
        await client.post(f"/v1/subscriptions/{sid}/resume", headers=bearer(key))
        await client.get(f"/v1/subscriptions/{sid}", headers=bearer(mo_key))  # another's: refused
        async with client.stream(
            "GET", f"/v1/subscriptions/{sid}/events", params={"after": "0"}, headers=bearer(key)
        ) as stream:
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    break
        async with connect(
            base_url.replace("http://", "ws://") + f"/v1/subscriptions/{socket_sid}/ws?after=0",
            additional_headers=bearer(key),
        ) as websocket:
            assert json.loads(await websocket.recv())["type"] == "record"

        hk = await _subscription_accesses(client, HK_DEPT)
        mo = await _subscription_accesses(client, MO_DSAT)

    agreement = "sz-hk-traffic"
    assert created.status_code == 201
    assert hk == [
        ("subscription-create", True, SZ, agreement, 1),
        ("subscription-create", True, SZ, agreement, 1),
        ("subscription-create", False, "xx.unknown.set", None, 0),
        ("subscriptions", True, None, None, 2),
        ("subscription-pause", True, SZ, agreement, 0),
        ("subscription-resume", True, SZ, agreement, 0),
        ("subscription-events", True, SZ, agreement, 0),
        ("subscription-socket", True, SZ, agreement, 0),
    ]
    assert mo == [("subscription", False, None, None, 0)]
