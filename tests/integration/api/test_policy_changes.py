"""Changes to agreements and the whitelist take effect on the next request; every decision is
in the access log, which the administrator and auditors read; the administrator's catalog
says who can see each dataset under which agreement."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from domain.classification import Classification
from storage.governance import Governance
from tests.integration.api.conftest import ServedGoverned, bearer, client_of
from tests.integration.api.governed import GZ_BUREAU, HK, HK_DEPT, MO, MO_DSAT, SZ
from tests.support.credentials import ADMIN

pytestmark = pytest.mark.integration

MISSING = "xx.traffic.readings"


@pytest.fixture
async def fresh_api(fresh_governed: ServedGoverned) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(fresh_governed.app) as client:
        yield client


async def _as_missing(api: httpx.AsyncClient, key: str, dataset_id: str) -> None:
    """The dataset's records answer exactly as a dataset that does not exist."""
    seen = await api.get(f"/v1/datasets/{dataset_id}/records", headers=bearer(key))
    missing = await api.get(f"/v1/datasets/{MISSING}/records", headers=bearer(key))
    assert seen.status_code == missing.status_code == 404
    assert seen.text.replace(dataset_id, MISSING) == missing.text


async def test_revoking_an_agreement_denies_the_next_request(
    fresh_governed: ServedGoverned, fresh_api: httpx.AsyncClient
) -> None:
    key = fresh_governed.store.keys[GZ_BUREAU]
    before = await fresh_api.get(f"/v1/datasets/{HK}/records", headers=bearer(key))
    assert before.status_code == 200
    assert before.json()["count"] > 0

    governance = Governance(fresh_governed.event_store_url)
    try:
        governance.revoke("hk-gz-traffic", "hk", "the bureau asked to end it")
    finally:
        governance.close()

    await _as_missing(fresh_api, key, HK)
    log = await fresh_api.get("/v1/access-log", params={"partner": GZ_BUREAU}, headers=ADMIN)
    last = [e for e in log.json()["entries"] if e["dataset_id"] == HK][-1]
    assert (last["allowed"], last["reason"], last["agreement_id"]) == (
        False, "agreement-not-active", "hk-gz-traffic",
    )  # fmt: skip


async def test_withdrawing_a_whitelist_rule_denies_the_next_request(
    fresh_governed: ServedGoverned, fresh_api: httpx.AsyncClient
) -> None:
    key = fresh_governed.store.keys[MO_DSAT]
    assert (await fresh_api.get(f"/v1/datasets/{SZ}", headers=bearer(key))).status_code == 200

    governance = Governance(fresh_governed.event_store_url)
    try:
        version = governance.withdraw_rule("cn-mo-traffic", "the basis lapsed")
    finally:
        governance.close()

    await _as_missing(fresh_api, key, SZ)
    # Its own region's dataset is not affected.
    assert (await fresh_api.get(f"/v1/datasets/{MO}", headers=bearer(key))).status_code == 200
    log = await fresh_api.get("/v1/access-log", params={"dataset": SZ}, headers=ADMIN)
    last = log.json()["entries"][-1]
    assert (last["partner_id"], last["allowed"], last["reason"]) == (
        MO_DSAT, False, "no-whitelist-rule",
    )  # fmt: skip
    assert last["whitelist_version"] == version


async def test_the_access_log_holds_every_decision_and_auditors_read_their_part(
    fresh_governed: ServedGoverned, fresh_api: httpx.AsyncClient
) -> None:
    keys = fresh_governed.store.keys
    allowed = await fresh_api.get(
        f"/v1/datasets/{HK}/records", params={"limit": 7}, headers=bearer(keys[GZ_BUREAU])
    )
    denied = await fresh_api.get(f"/v1/datasets/{SZ}/records", headers=bearer(keys[GZ_BUREAU]))
    refused = await fresh_api.get(f"/v1/datasets/{HK}", headers=bearer("blk_nope_nope"))
    hk_reads = await fresh_api.get(f"/v1/datasets/{HK}/records", headers=bearer(keys[HK_DEPT]))
    assert (allowed.status_code, denied.status_code, refused.status_code) == (200, 404, 401)
    assert hk_reads.status_code == 200

    everything = (await fresh_api.get("/v1/access-log", headers=ADMIN)).json()["entries"]
    mine = await fresh_api.get("/v1/access-log", headers=bearer(keys[GZ_BUREAU]))
    not_auditor = await fresh_api.get("/v1/access-log", headers=bearer(keys[HK_DEPT]))

    records = [e for e in everything if e["action"] == "records"]
    assert records[0] == {
        **records[0],
        "partner_id": GZ_BUREAU,
        "dataset_id": HK,
        "allowed": True,
        "reason": "agreement",
        "agreement_id": "hk-gz-traffic",
        "whitelist_rule": "hk-cn-traffic",
        "rows": 7,
        "columns": ["sensor_id", "observed_at", "speed"],
    }
    assert records[1]["partner_id"] == GZ_BUREAU
    assert (records[1]["dataset_id"], records[1]["allowed"], records[1]["rows"]) == (SZ, False, 0)
    assert records[1]["reason"] == "no-agreement"
    assert records[2]["reason"] == "owner-region"
    failed = [e for e in everything if e["action"] == "authenticate"]
    assert [(e["partner_id"], e["allowed"]) for e in failed] == [(None, False)]
    assert failed[0]["reason"].startswith("unauthenticated")
    # The auditor (whose region owns no dataset) reads only its own accesses.
    assert mine.status_code == 200
    assert {e["partner_id"] for e in mine.json()["entries"]} == {GZ_BUREAU}
    assert not_auditor.status_code == 403
    # Paging by position.
    first = (await fresh_api.get("/v1/access-log", params={"limit": 2}, headers=ADMIN)).json()
    after = first["next_after"]
    rest = await fresh_api.get("/v1/access-log", params={"after": after}, headers=ADMIN)
    assert [e["position"] for e in first["entries"] + rest.json()["entries"]][:4] == [
        e["position"] for e in everything
    ][:4]


async def test_the_administrator_sees_who_can_see_each_dataset_and_every_file_url(
    fresh_governed: ServedGoverned, fresh_api: httpx.AsyncClient
) -> None:
    body = (await fresh_api.get("/v1/datasets", headers=ADMIN)).json()

    access = {
        d["id"]: {(a["partner_id"], a["reason"], a["agreement_id"]) for a in d["access"]}
        for d in body["datasets"]
    }
    assert access == {
        SZ: {(HK_DEPT, "agreement", "sz-hk-traffic"), (MO_DSAT, "agreement", "sz-mo-traffic")},
        HK: {(HK_DEPT, "owner-region", None), (GZ_BUREAU, "agreement", "hk-gz-traffic")},
        MO: {(MO_DSAT, "owner-region", None)},
    }
    href = (await fresh_api.get(f"/v1/datasets/{SZ}/snapshots", headers=ADMIN)).json()["snapshots"][
        0
    ]["href"]
    manifest = (await fresh_api.get(href, headers=ADMIN)).json()
    assert manifest["manifest_url"]
    assert all(f["url"] and f["export"] is None for f in manifest["files"])
    assert {f["region"] for f in manifest["files"]} == {"hk", "gd-shenzhen", "mo"}
    partner = await fresh_api.get(href, headers=bearer(fresh_governed.store.keys[HK_DEPT]))
    assert {f["region"] for f in partner.json()["files"]} == {"hk", "gd-shenzhen"}


async def test_file_urls_are_given_where_a_grant_covers_whole_files(
    fresh_governed: ServedGoverned, fresh_api: httpx.AsyncClient
) -> None:
    governance = Governance(fresh_governed.event_store_url)
    try:
        governance.register_partner("hk", "Police", Classification.RESTRICTED)
        key = governance.issue_key("hk-police", datetime.now(UTC) - timedelta(seconds=1)).key
    finally:
        governance.close()
    href = (await fresh_api.get(f"/v1/datasets/{HK}/snapshots", headers=ADMIN)).json()["snapshots"][
        0
    ]["href"]

    whole = (await fresh_api.get(href, headers=bearer(key))).json()
    partial = await fresh_api.get(href, headers=bearer(fresh_governed.store.keys[HK_DEPT]))

    # Every field at restricted clearance, no transformation, no row limit: the files as
    # stored are exactly what the police may see.
    assert whole["manifest_url"]
    assert all(f["url"] and f["export"] is None for f in whole["files"])
    # The department's clearance withholds a field: it is pointed to the records instead.
    assert partial.json()["manifest_url"] is None
    assert all(f["url"] is None and f["export"] for f in partial.json()["files"])
    export = partial.json()["files"][0]["export"]
    records = await fresh_api.get(export, headers=bearer(fresh_governed.store.keys[HK_DEPT]))
    assert records.status_code == 200
    assert records.headers["content-type"].startswith("application/vnd.apache.parquet")


async def test_snapshot_counts_are_given_only_for_rows_within_the_grant(
    fresh_governed: ServedGoverned, fresh_api: httpx.AsyncClient
) -> None:
    keys = fresh_governed.store.keys

    async def snapshots(key: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
        listed = (await fresh_api.get(f"/v1/datasets/{SZ}/snapshots", headers=key)).json()
        first = listed["snapshots"][0]
        return first, (await fresh_api.get(first["href"], headers=key)).json()

    admin_ref, admin_manifest = await snapshots(ADMIN)
    by_region_ref, by_region = await snapshots(bearer(keys[HK_DEPT]))
    by_box_ref, by_box = await snapshots(bearer(keys[MO_DSAT]))

    assert admin_ref["row_count"] == admin_manifest["row_count"] > 0
    # Rows limited to regions: whole files of those regions, counted.
    assert by_region_ref["row_count"] is None
    reached = [f for f in admin_manifest["files"] if f["region"] in {"gd-shenzhen", "hk"}]
    assert by_region["row_count"] == sum(f["rows"] for f in reached)
    assert [f["rows"] for f in by_region["files"]] == [f["rows"] for f in reached]
    # Rows limited to a box cut through files: no counts at all.
    assert by_box_ref["row_count"] is None
    assert by_box["row_count"] is None
    assert all(f["rows"] is None for f in by_box["files"])
