"""GET /v1/audit/bundle: an evidence bundle of a log range as a zip, for the administrator and
the audit scope, that `verify --bundle` checks under the node's key with no server; a range no
signed head covers is refused, and each download is logged."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage.bundle_verifier import verify_bundle
from storage.tree_heads import TreeHeadLedger, TreeHeadRecorder
from tests.integration.api.conftest import ServedGoverned, bearer, client_of
from tests.integration.api.governed import GZ_BUREAU, HK_DEPT
from tests.support.credentials import ADMIN

pytestmark = pytest.mark.integration

NODE_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"audit bundle node").digest())


@pytest.fixture
async def api(fresh_governed: ServedGoverned) -> AsyncIterator[tuple[httpx.AsyncClient, int]]:
    """The API, and the last log position under the newest signed head."""
    ledger = TreeHeadLedger(fresh_governed.event_store_url)
    try:
        TreeHeadRecorder(ledger, NODE_KEY, every_events=7).run_once()
        latest = ledger.latest()
    finally:
        ledger.close()
    assert latest is not None
    async with client_of(fresh_governed.app) as client:
        yield client, latest.last_position


async def test_a_served_bundle_verifies_under_the_nodes_key(
    api: tuple[httpx.AsyncClient, int], tmp_path: Path
) -> None:
    client, covered = api
    answer = await client.get("/v1/audit/bundle", params={"from": 3, "to": covered}, headers=ADMIN)

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    bundle = tmp_path / "served.zip"
    bundle.write_bytes(answer.content)
    report = verify_bundle(bundle, NODE_KEY.public_key())
    assert report.failure is None
    assert report.verified is not None
    assert report.verified.events >= covered
    with zipfile.ZipFile(bundle) as opened:
        names = set(opened.namelist())
    assert {"events.jsonl", "bundle.json", "README.txt"} <= names
    assert not {"node-key.pub.pem", "report.json"} & names


async def test_a_range_no_head_covers_is_refused(api: tuple[httpx.AsyncClient, int]) -> None:
    client, covered = api
    beyond = await client.get(
        "/v1/audit/bundle", params={"from": 1, "to": covered + 1000}, headers=ADMIN
    )
    backwards = await client.get("/v1/audit/bundle", params={"from": 9, "to": 3}, headers=ADMIN)

    assert beyond.status_code == backwards.status_code == 422
    assert "no signed tree head covers" in beyond.json()["detail"]
    assert "is after" in backwards.json()["detail"]


async def test_only_the_administrator_and_auditors_download_bundles_and_each_is_logged(
    fresh_governed: ServedGoverned, api: tuple[httpx.AsyncClient, int]
) -> None:
    client, covered = api
    params = {"from": 1, "to": covered}
    auditor = await client.get(
        "/v1/audit/bundle", params=params, headers=bearer(fresh_governed.store.keys[GZ_BUREAU])
    )
    refused = await client.get(
        "/v1/audit/bundle", params=params, headers=bearer(fresh_governed.store.keys[HK_DEPT])
    )

    assert auditor.status_code == 200
    assert refused.status_code == 403
    accesses = (await client.get("/v1/access-log", params={"limit": 1000}, headers=ADMIN)).json()
    downloads = [
        (e["partner_id"], e["allowed"])
        for e in accesses["entries"]
        if e["action"] == "audit-bundle"
    ]
    assert downloads == [(GZ_BUREAU, True), (HK_DEPT, False)]
