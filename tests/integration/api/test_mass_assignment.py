"""A governance request body may set only what its caller may set: a field it does not
declare (a classification, an owner, a state, an id, a key digest, or any other) is refused
with 422 naming the field, and nothing in the store changes."""

from __future__ import annotations

import asyncio
import string
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from api.governance_schemas import (
    AgreementProposal,
    KeyRequest,
    PartnerRegistration,
    ReasonRequest,
    TransitionRequest,
    WhitelistRuleModel,
)
from storage.governance import Governance
from tests.integration.api.administered import Administered, administered, governance_state
from tests.integration.api.governed import GZ_BUREAU, HK, HK_DEPT, PURPOSE
from tests.support.credentials import ADMIN

pytestmark = pytest.mark.integration

SINCE = (datetime.now(UTC) - timedelta(days=1)).isoformat()
_RULE = {
    "rule_id": "hk-mo-traffic",
    "source_jurisdiction": "HK",
    "destination_jurisdiction": "MO",
    "dataset_kind": "traffic",
    "max_classification": "internal",
    "purposes": [PURPOSE],
    "legal_basis": "GBA-SC-2026-0042",
    "valid_from": SINCE,
}
_PROPOSAL = {
    "agreement_id": "hk-gz-more",
    "consumer_partner": GZ_BUREAU,
    "datasets": [HK],
    "purpose": PURPOSE,
    "valid_from": SINCE,
}
_REASON = {"reason": "review"}

# (method, path, a body the administrator may send there)
ENDPOINTS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/v1/partners", {"region": "hk", "name": "Police"}),
    ("POST", f"/v1/partners/{HK_DEPT}/keys", {"overlap_minutes": 5}),
    ("POST", f"/v1/partners/{HK_DEPT}/keys/abc/revoke", _REASON),
    ("POST", "/v1/whitelist/rules", _RULE),
    ("POST", "/v1/whitelist/rules/cn-hk-traffic/withdraw", _REASON),
    ("POST", "/v1/agreements", _PROPOSAL),
    ("POST", "/v1/agreements/hk-gz-traffic/suspend", _REASON),
    ("POST", "/v1/agreements/hk-gz-traffic/revoke", _REASON),
    ("POST", "/v1/agreements/sz-hk-traffic/activate", {}),
]
# Fields a caller must never set through these bodies.
FORBIDDEN = [
    "classification", "owner_region", "owner", "id", "state", "created_at", "digest",
    "key_hash", "keys", "active_keys", "history", "whitelist_rules", "version", "by",
    "proposed_by", "dataset_id_owner", "admin",
]  # fmt: skip
# Fields declared by one body but not settable through another.
CROSSED = {
    f"/v1/partners/{HK_DEPT}/keys": ["region", "partner_id", "clearance", "scopes", "key"],
    "/v1/agreements": ["provider", "partner_id", "region"],
    "/v1/agreements/sz-hk-traffic/activate": ["reason", "consumer_partner", "datasets"],
    "/v1/agreements/hk-gz-traffic/suspend": ["purpose", "valid_until", "fields"],
}


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Administered]:
    with administered(tmp_path, request.param) as served:
        yield served


@pytest.fixture
def governance(store: Administered) -> Iterator[Governance]:
    opened = Governance(store.event_store_url)
    try:
        yield opened
    finally:
        opened.close()


def _send(app: FastAPI, path: str, body: dict[str, Any]) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://baylink") as api:
            return await api.post(path, json=body, headers=ADMIN)

    return asyncio.run(send())


def _refused(answer: httpx.Response, field: str) -> None:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["parameter"] == field
    assert field in problem["detail"]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=[e[1] for e in ENDPOINTS])
def test_a_field_the_caller_may_not_set_is_refused_and_changes_nothing(
    store: Administered, governance: Governance, method: str, path: str, body: dict[str, Any]
) -> None:
    before = governance_state(governance)

    for field in [*FORBIDDEN, *CROSSED.get(path, [])]:
        _refused(_send(store.app, path, {**body, field: "public"}), field)

    assert governance_state(governance) == before


def test_nested_fields_of_a_proposal_are_held_to_their_declaration_too(
    store: Administered, governance: Governance
) -> None:
    before = governance_state(governance)
    nested = {
        "row_scope.owner_region": {**_PROPOSAL, "row_scope": {"owner_region": "hk"}},
        "transformations.hk.traffic.readings.0.classification": {
            **_PROPOSAL,
            "transformations": {HK: [{"kind": "drop", "field": "speed", "classification": "x"}]},
        },
    }
    for field, body in nested.items():
        _refused(_send(store.app, "/v1/agreements", body), field)

    assert governance_state(governance) == before
    # Without them the same proposal is accepted, starting where every proposal starts.
    accepted = _send(store.app, "/v1/agreements", _PROPOSAL)
    assert accepted.status_code == 201, accepted.text
    assert (accepted.json()["state"], accepted.json()["provider_region"]) == ("proposed", "hk")


def test_the_bodies_without_extra_fields_are_accepted(
    store: Administered, governance: Governance
) -> None:
    # So the refusals above are the extra fields', not the bodies'.
    statuses = {}
    for _method, path, body in ENDPOINTS:
        statuses[path] = _send(store.app, path, body).status_code

    assert statuses == {
        "/v1/partners": 201,
        f"/v1/partners/{HK_DEPT}/keys": 201,
        f"/v1/partners/{HK_DEPT}/keys/abc/revoke": 404,  # no such key: the body was read
        "/v1/whitelist/rules": 201,
        "/v1/whitelist/rules/cn-hk-traffic/withdraw": 200,
        "/v1/agreements": 201,
        "/v1/agreements/hk-gz-traffic/suspend": 200,
        "/v1/agreements/hk-gz-traffic/revoke": 200,
        "/v1/agreements/sz-hk-traffic/activate": 409,  # active already: the body was read
    }
    assert governance.partner("hk-police").region == "hk"


_MODELS: dict[str, type[BaseModel]] = {
    "/v1/partners": PartnerRegistration,
    f"/v1/partners/{HK_DEPT}/keys": KeyRequest,
    "/v1/whitelist/rules": WhitelistRuleModel,
    "/v1/agreements": AgreementProposal,
    "/v1/agreements/sz-hk-traffic/activate": TransitionRequest,
}
# The fields each body declares.
_DECLARED = {
    path: frozenset(_MODELS.get(path, ReasonRequest).model_fields) for _m, path, _b in ENDPOINTS
}
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
_KEYS = st.one_of(
    st.sampled_from(FORBIDDEN),
    st.text(string.ascii_letters + string.digits + "_-.", min_size=1, max_size=24),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_generated_extra_field_changes_anything(
    store: Administered, governance: Governance, data: st.DataObject
) -> None:
    before = governance_state(governance)
    _method, path, body = data.draw(st.sampled_from(ENDPOINTS))
    field = data.draw(_KEYS.filter(lambda key: key not in body and key not in _DECLARED[path]))
    value = data.draw(_JSON)

    _refused(_send(store.app, path, {**body, field: value}), field)

    assert governance_state(governance) == before
