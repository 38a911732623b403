"""Partners, keys, the whitelist and agreements administered over HTTP: the whole lifecycle on
a store with records, who may do what, and domain refusals answered as problems."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.api.administered import Administered, administered
from tests.integration.api.conftest import ServedGoverned, bearer, client_of
from tests.integration.api.governed import GZ_BUREAU, HK, HK_DEPT, MO, MO_DSAT, PURPOSE, SZ
from tests.support.credentials import ADMIN

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


@pytest.fixture
async def fresh_api(fresh_governed: ServedGoverned) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(fresh_governed.app) as client:
        yield client


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Administered]:
    with administered(tmp_path, request.param) as served:
        yield served


@pytest.fixture
async def api(store: Administered) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=store.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://baylink") as client:
        yield client


def _rule(rule_id: str, source: str, destination: str, **extra: Any) -> dict[str, Any]:
    return {
        "rule_id": rule_id,
        "source_jurisdiction": source,
        "destination_jurisdiction": destination,
        "dataset_kind": "traffic",
        "max_classification": "internal",
        "purposes": [PURPOSE],
        "legal_basis": "GBA-SC-2026-0042",
        "valid_from": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        **extra,
    }


def _proposal(agreement_id: str, consumer: str, dataset: str, **extra: Any) -> dict[str, Any]:
    return {
        "agreement_id": agreement_id,
        "consumer_partner": consumer,
        "datasets": [dataset],
        "purpose": PURPOSE,
        "valid_from": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        **extra,
    }


async def _as_missing(
    api: httpx.AsyncClient,
    method: str,
    path: str,
    present: str,
    headers: dict[str, str],
    body: dict[str, str] | None = None,
) -> None:
    """``path`` naming ``present`` answers exactly as it does naming nothing that exists."""
    seen = await api.request(method, path, json=body, headers=headers)
    absent = path.replace(present, "no-such-thing")
    missing = await api.request(method, absent, json=body, headers=headers)
    assert seen.status_code == missing.status_code == 404
    assert seen.text.replace(present, "no-such-thing") == missing.text


async def test_a_partner_registered_over_http_gets_its_data_once_the_whitelist_allows_it(
    fresh_governed: ServedGoverned, fresh_api: httpx.AsyncClient
) -> None:
    api, hk_key = fresh_api, bearer(fresh_governed.store.keys[HK_DEPT])
    every = {"limit": 1000}
    before = len((await api.get("/v1/access-log", params=every, headers=ADMIN)).json()["entries"])

    created = await api.post(
        "/v1/partners",
        json={"region": "mo", "name": "Transport Bureau", "clearance": "internal"},
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    partner_id = created.json()["partner"]["partner_id"]
    assert partner_id == "mo-transport-bureau"
    assert created.headers["location"] == f"/v1/partners/{partner_id}"
    key = created.json()["api_key"]["key"]
    assert created.json()["partner"]["active_keys"] == [created.json()["api_key"]["key_id"]]
    assert "digest" not in created.text
    mine = bearer(key)
    assert (await api.get(f"/v1/partners/{partner_id}", headers=ADMIN)).json() == created.json()[
        "partner"
    ]
    assert key not in (await api.get(f"/v1/partners/{partner_id}", headers=ADMIN)).text

    # Its own region's data it sees at once; Hong Kong's only under an agreement.
    catalog = await api.get("/v1/datasets", headers=mine)
    assert [d["id"] for d in catalog.json()["datasets"]] == [MO]
    assert (await api.get(f"/v1/datasets/{HK}/records", headers=mine)).status_code == 404

    proposed = await api.post(
        "/v1/agreements", json=_proposal("hk-mo", partner_id, HK), headers=ADMIN
    )
    assert proposed.status_code == 201, proposed.text
    assert proposed.headers["location"] == "/v1/agreements/hk-mo"
    assert (proposed.json()["state"], proposed.json()["provider_region"]) == ("proposed", "hk")

    approved = await api.post("/v1/agreements/hk-mo/approve", headers=hk_key)
    accepted = await api.post("/v1/agreements/hk-mo/accept", headers=mine)
    assert (approved.status_code, accepted.status_code) == (200, 200), accepted.text
    refused = await api.post("/v1/agreements/hk-mo/activate", headers=ADMIN)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == PROBLEM
    assert "no whitelist rule" in refused.json()["detail"]

    rule = _rule("hk-mo-traffic", "HK", "MO")
    tried = await api.post(
        "/v1/whitelist/rules", params={"dry_run": "true"}, json=rule, headers=ADMIN
    )
    assert tried.status_code == 200
    assert tried.json() == {
        "dry_run": True,
        "rule_id": "hk-mo-traffic",
        "whitelist_version": 4,
        "cut": [],
    }
    unchanged = (await api.get("/v1/whitelist", headers=ADMIN)).json()
    assert unchanged["version"] == 4
    assert [r["rule_id"] for r in unchanged["rules"]] == [
        "cn-hk-traffic", "cn-mo-traffic", "hk-cn-traffic",
    ]  # fmt: skip
    added = await api.post("/v1/whitelist/rules", json=rule, headers=ADMIN)
    assert added.status_code == 201
    assert added.json()["whitelist_version"] == 5
    activated = await api.post("/v1/agreements/hk-mo/activate", headers=ADMIN)
    assert activated.status_code == 200, activated.text
    assert activated.json()["state"] == "active"
    assert activated.json()["whitelist_rules"] == ["hk-mo-traffic"]
    assert [step["note"] for step in activated.json()["history"]] == [
        "admin", HK_DEPT, partner_id, "admin",
    ]  # fmt: skip

    records = await api.get(f"/v1/datasets/{HK}/records", headers=mine)
    assert records.status_code == 200
    assert records.json()["count"] > 0

    # Withdrawing the rule: the dry run names the agreement it would cut and cuts nothing.
    reason = {"reason": "the filing lapsed"}
    path = "/v1/whitelist/rules/hk-mo-traffic/withdraw"
    dry = await api.post(path, params={"dry_run": "true"}, json=reason, headers=ADMIN)
    assert dry.status_code == 200
    assert [(c["agreement_id"], c["dataset_id"]) for c in dry.json()["cut"]] == [("hk-mo", HK)]
    assert (await api.get(f"/v1/datasets/{HK}/records", headers=mine)).status_code == 200
    withdrawn = await api.post(path, json=reason, headers=ADMIN)
    assert withdrawn.status_code == 200
    assert (withdrawn.json()["whitelist_version"], withdrawn.json()["dry_run"]) == (6, False)
    assert withdrawn.json()["cut"] == dry.json()["cut"]
    assert (await api.get(f"/v1/datasets/{HK}/records", headers=mine)).status_code == 404

    # Every request above is in the access log, under who made it.
    log = (await api.get("/v1/access-log", params=every, headers=ADMIN)).json()["entries"][before:]
    entries = [(e["partner_id"], e["action"], e["allowed"]) for e in log]
    assert entries == [
        (None, "access-log", True),
        (None, "partner-register", True),
        (None, "partner", True),
        (None, "partner", True),
        (partner_id, "datasets", True),
        (partner_id, "records", False),
        (None, "agreement-propose", True),
        (HK_DEPT, "agreement-approve", True),
        (partner_id, "agreement-accept", True),
        (None, "agreement-activate", False),
        (None, "whitelist-add-dry-run", True),
        (None, "whitelist", True),
        (None, "whitelist-add", True),
        (None, "agreement-activate", True),
        (partner_id, "records", True),
        (None, "whitelist-withdraw-dry-run", True),
        (partner_id, "records", True),
        (None, "whitelist-withdraw", True),
        (partner_id, "records", False),
    ]
    approve = next(e for e in log if e["action"] == "agreement-approve")
    assert approve["agreement_id"] == "hk-mo"


async def test_a_rotated_key_works_through_its_overlap_and_not_after_revocation(
    store: Administered, api: httpx.AsyncClient
) -> None:
    old = store.keys[HK_DEPT]
    old_id = old.split("_")[1]

    rotated = await api.post(
        f"/v1/partners/{HK_DEPT}/keys",
        json={"replaces": old_id, "overlap_minutes": 30},
        headers=ADMIN,
    )
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["key"]
    assert rotated.json()["replaces"] == old_id
    assert rotated.json()["replaced_key_ends_in_minutes"] == 30
    for key in (old, new):
        assert (await api.get("/v1/datasets", headers=bearer(key))).status_code == 200
    partner = (await api.get(f"/v1/partners/{HK_DEPT}", headers=ADMIN)).json()
    assert sorted(partner["active_keys"]) == sorted([old_id, rotated.json()["key_id"]])

    revoked = await api.post(
        f"/v1/partners/{HK_DEPT}/keys/{old_id}/revoke",
        json={"reason": "rotated out"},
        headers=ADMIN,
    )
    assert revoked.status_code == 200
    assert revoked.json()["active_keys"] == [rotated.json()["key_id"]]
    assert (await api.get("/v1/datasets", headers=bearer(old))).status_code == 401
    assert (await api.get("/v1/datasets", headers=bearer(new))).status_code == 200

    # With no overlap the rotated-out key ends at once.
    again = await api.post(
        f"/v1/partners/{HK_DEPT}/keys",
        json={"replaces": rotated.json()["key_id"], "overlap_minutes": 0},
        headers=ADMIN,
    )
    assert (await api.get("/v1/datasets", headers=bearer(new))).status_code == 401
    assert (await api.get("/v1/datasets", headers=bearer(again.json()["key"]))).status_code == 200


async def test_key_requests_outside_their_bounds_are_refused(
    store: Administered, api: httpx.AsyncClient
) -> None:
    keys = f"/v1/partners/{HK_DEPT}/keys"
    too_long = await api.post(
        keys, json={"replaces": "abc", "overlap_minutes": 10081}, headers=ADMIN
    )
    unknown_key = await api.post(keys, json={"replaces": "abc"}, headers=ADMIN)
    unknown_partner = await api.post("/v1/partners/nobody/keys", json={}, headers=ADMIN)
    no_reason = await api.post(f"{keys}/abc/revoke", json={"reason": " "}, headers=ADMIN)
    revoke_unknown = await api.post(f"{keys}/abc/revoke", json={"reason": "x"}, headers=ADMIN)

    assert too_long.status_code == 422
    assert too_long.json()["parameter"] == "overlap_minutes"
    assert unknown_key.status_code == 422
    assert "replaces" in unknown_key.json()["detail"]
    assert unknown_partner.status_code == 404
    assert no_reason.status_code == 422
    assert revoke_unknown.status_code == 404
    assert revoke_unknown.json()["detail"] == f"partner {HK_DEPT} has no key 'abc'"
    assert (await api.get("/v1/datasets", headers=bearer(store.keys[HK_DEPT]))).status_code == 200


async def test_partners_may_not_administer_partners_or_the_whitelist(
    store: Administered, api: httpx.AsyncClient
) -> None:
    partner = bearer(store.keys[GZ_BUREAU])
    writes = [
        ("POST", "/v1/partners", {"region": "hk", "name": "Police"}),
        ("POST", f"/v1/partners/{GZ_BUREAU}/keys", {}),
        ("POST", f"/v1/partners/{GZ_BUREAU}/keys/abc/revoke", {"reason": "x"}),
        ("GET", "/v1/whitelist", None),
        ("POST", "/v1/whitelist/rules", _rule("mine", "HK", "CN")),
        ("POST", "/v1/whitelist/rules/hk-cn-traffic/withdraw", {"reason": "x"}),
        ("POST", "/v1/agreements", _proposal("mine", GZ_BUREAU, HK)),
    ]
    for method, path, body in writes:
        answer = await api.request(method, path, json=body, headers=partner)
        assert answer.status_code == 403, (path, answer.text)
        assert answer.headers["content-type"] == PROBLEM
        assert "admin scope" in answer.json()["detail"]

    # It sees itself, and no other partner: another answers as one that does not exist.
    listed = (await api.get("/v1/partners", headers=partner)).json()["partners"]
    assert [p["partner_id"] for p in listed] == [GZ_BUREAU]
    await _as_missing(api, "GET", f"/v1/partners/{HK_DEPT}", HK_DEPT, partner)
    everyone = (await api.get("/v1/partners", headers=ADMIN)).json()["partners"]
    assert {p["partner_id"] for p in everyone} == {HK_DEPT, MO_DSAT, GZ_BUREAU}
    whitelist = (await api.get("/v1/whitelist", headers=ADMIN)).json()
    assert whitelist["version"] == 4
    log = (await api.get("/v1/access-log", params={"partner": GZ_BUREAU}, headers=ADMIN)).json()
    refused = [e["action"] for e in log["entries"] if not e["allowed"]]
    assert refused == [
        "partner-register", "key-issue", "key-revoke", "whitelist", "whitelist-add",
        "whitelist-withdraw", "agreement-propose", "partner", "partner",
    ]  # fmt: skip


async def test_a_partner_sees_the_agreements_it_consumes_or_its_region_provides(
    store: Administered, api: httpx.AsyncClient
) -> None:
    def ids(answer: httpx.Response) -> list[str]:
        return [a["agreement_id"] for a in answer.json()["agreements"]]

    seen = {
        partner: ids(await api.get("/v1/agreements", headers=bearer(store.keys[partner])))
        for partner in (HK_DEPT, MO_DSAT, GZ_BUREAU)
    }
    every = ids(await api.get("/v1/agreements", headers=ADMIN))

    assert every == ["hk-gz-traffic", "sz-hk-traffic", "sz-mo-traffic"]
    assert seen == {
        HK_DEPT: ["hk-gz-traffic", "sz-hk-traffic"],  # provider region; consumer
        MO_DSAT: ["sz-mo-traffic"],
        GZ_BUREAU: ["hk-gz-traffic"],
    }
    mo = bearer(store.keys[MO_DSAT])
    asked = (("GET", "", None), ("POST", "/suspend", {"reason": "x"}), ("POST", "/approve", None))
    for method, suffix, body in asked:
        path = f"/v1/agreements/sz-hk-traffic{suffix}"
        await _as_missing(api, method, path, "sz-hk-traffic", mo, body)
    shown = await api.get("/v1/agreements/sz-mo-traffic", headers=mo)
    assert shown.status_code == 200
    assert shown.json()["consumer_partner"] == MO_DSAT


async def test_the_provider_approves_the_consumer_accepts_and_only_the_administrator_does_the_rest(
    store: Administered, api: httpx.AsyncClient
) -> None:
    hk, gz = bearer(store.keys[HK_DEPT]), bearer(store.keys[GZ_BUREAU])
    proposal = _proposal("hk-gz-more", GZ_BUREAU, HK, fields={HK: ["speed"]})
    assert (await api.post("/v1/agreements", json=proposal, headers=ADMIN)).status_code == 201
    path = "/v1/agreements/hk-gz-more"

    by_consumer = await api.post(f"{path}/approve", headers=gz)
    assert by_consumer.status_code == 403
    assert "provider region" in by_consumer.json()["detail"]
    assert (await api.post(f"{path}/approve", headers=hk)).json()["state"] == "approved"
    assert (await api.post(f"{path}/accept", headers=hk)).status_code == 403
    assert (await api.post(f"{path}/accept", headers=gz)).json()["state"] == "accepted"
    for partner in (hk, gz):
        assert (await api.post(f"{path}/activate", headers=partner)).status_code == 403
    assert (await api.post(f"{path}/activate", headers=ADMIN)).json()["state"] == "active"
    reason = {"reason": "review"}
    for transition in ("suspend", "revoke"):
        assert (await api.post(f"{path}/{transition}", json=reason, headers=hk)).status_code == 403
    assert (await api.post(f"{path}/suspend", json=reason, headers=ADMIN)).json()[
        "state"
    ] == "suspended"
    assert (await api.post(f"{path}/resume", headers=ADMIN)).json()["state"] == "active"
    revoked = await api.post(f"{path}/revoke", json=reason, headers=ADMIN)

    assert revoked.json()["state"] == "revoked"
    assert [s["note"] for s in revoked.json()["history"]] == [
        "admin", HK_DEPT, GZ_BUREAU, "admin", "admin: review", "admin", "admin: review",
    ]  # fmt: skip


async def test_domain_refusals_are_problems_with_the_domain_message(
    store: Administered, api: httpx.AsyncClient
) -> None:
    cases = [
        ("POST", "/v1/agreements/sz-hk-traffic/approve", None, 409,
         "agreement 'sz-hk-traffic' is active: cannot approve it (only when proposed)"),
        ("POST", "/v1/agreements/sz-hk-traffic/suspend", {"reason": " "}, 422, "reason"),
        ("POST", "/v1/agreements", _proposal("x", GZ_BUREAU, "xx.traffic.readings"), 422,
         "no dataset 'xx.traffic.readings' is registered"),
        ("POST", "/v1/agreements", _proposal("x", "nobody", HK), 422,
         "consumer_partner: no partner 'nobody'"),
        ("POST", "/v1/agreements", _proposal("x", GZ_BUREAU, HK, provider_region="mo"), 422,
         "hk.traffic.readings belongs to hk, not to the provider mo"),
        ("POST", "/v1/agreements", _proposal("x", GZ_BUREAU, HK, fields={HK: ["nothing"]}),
         422, "has no fields ['nothing']"),
        ("POST", "/v1/agreements", _proposal("sz-hk-traffic", HK_DEPT, SZ), 409,
         "agreement 'sz-hk-traffic' exists already"),
        ("POST", "/v1/whitelist/rules", _rule("cn-hk-traffic", "CN", "HK"), 409,
         "whitelist rule 'cn-hk-traffic' exists already"),
        ("POST", "/v1/whitelist/rules", _rule("r", "CN", "HK", max_classification="restricted"),
         422, "restricted data never leaves its jurisdiction"),
        ("POST", "/v1/whitelist/rules", _rule("r", "HK", "HK"), 422,
         "data within one jurisdiction needs no whitelist rule"),
        ("POST", "/v1/whitelist/rules/nothing/withdraw", {"reason": "x"}, 404,
         "no whitelist rule 'nothing'"),
        ("POST", "/v1/partners", {"region": "xx", "name": "Somebody"}, 422, "xx"),
        ("POST", "/v1/partners", {"region": "mo", "name": "D", "partner_id": MO_DSAT}, 409,
         f"partner '{MO_DSAT}' exists already"),
    ]  # fmt: skip
    for method, path, body, status, message in cases:
        answer = await api.request(method, path, json=body, headers=ADMIN)

        assert answer.status_code == status, (path, answer.text)
        assert answer.headers["content-type"] == PROBLEM
        assert message in answer.json()["detail"], answer.text
