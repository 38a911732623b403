"""GET /v1/deliveries answers what a partner received of a dataset, when and under which
agreement: every entry for the administrator, its own and its region's datasets' for a
partner with the audit scope, nothing for one without; every reading is itself logged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.subscription_services import SubscriptionServices
from domain.classification import Classification
from storage.delivery_log import record_ids_digest
from storage.governance import Governance
from tests.integration.api.conftest import ServedGoverned, bearer, client_of
from tests.integration.api.governed import GZ_BUREAU, HK, HK_DEPT, MO_DSAT, SZ
from tests.support.credentials import ADMIN

pytestmark = pytest.mark.integration

LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
# Who subscribes to what, and when the batch it was delivered is recorded.
DELIVERIES = [
    (HK_DEPT, SZ, "sz-hk-traffic", LONG_AGO),
    (MO_DSAT, SZ, "sz-mo-traffic", LONG_AGO + timedelta(days=1)),
    (GZ_BUREAU, HK, "hk-gz-traffic", LONG_AGO + timedelta(days=2)),
]


@pytest.fixture
async def api(fresh_governed: ServedGoverned) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(fresh_governed.app) as client:
        yield client


async def _deliver(
    served: ServedGoverned, api: httpx.AsyncClient
) -> list[tuple[str, str, str, list[str]]]:
    """Each partner subscribes over HTTP and is delivered its first page of records."""
    services: SubscriptionServices = served.app.state.subscription_services
    delivered = []
    for partner, dataset_id, agreement_id, at in DELIVERIES:
        answer = await api.post(
            "/v1/subscriptions",
            json={"dataset_id": dataset_id, "channel": "sse"},
            headers=bearer(served.store.keys[partner]),
        )
        assert answer.status_code == 201, answer.text
        info = services.subscriptions.subscription(answer.json()["subscription_id"])
        page = services.feed.page(info, 0)
        assert page.delivered, "the store holds records the agreement grants"
        services.log.record(info, page, 1, track=False, at=at)
        delivered.append((partner, dataset_id, agreement_id, [d.record_id for d in page.delivered]))
    return delivered


async def _entries(api: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> Any:
    answer = await api.get("/v1/deliveries", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_the_administrator_reads_every_delivery_with_its_agreement_and_digest(
    fresh_governed: ServedGoverned, api: httpx.AsyncClient
) -> None:
    delivered = await _deliver(fresh_governed, api)

    page = await _entries(api, ADMIN)

    assert page["next_after"] is None
    assert [
        (e["partner_id"], e["dataset_id"], e["agreement_id"], e["channel"], e["records"],
         e["record_ids_digest"])
        for e in page["entries"]
    ] == [
        (partner, dataset_id, agreement_id, "sse", len(ids), record_ids_digest(ids))
        for partner, dataset_id, agreement_id, ids in delivered
    ]  # fmt: skip
    assert all(e["first_position"] <= e["last_position"] for e in page["entries"])
    positions = [e["position"] for e in page["entries"]]
    assert positions == sorted(positions)


async def test_filters_and_pages_narrow_what_is_read(
    fresh_governed: ServedGoverned, api: httpx.AsyncClient
) -> None:
    await _deliver(fresh_governed, api)

    by_partner = await _entries(api, ADMIN, partner=MO_DSAT)
    by_dataset = await _entries(api, ADMIN, dataset=SZ)
    in_window = await _entries(
        api,
        ADMIN,
        start=(LONG_AGO + timedelta(hours=12)).isoformat(),
        end=(LONG_AGO + timedelta(days=2)).isoformat(),
    )
    first = await _entries(api, ADMIN, limit=1)
    second = await _entries(api, ADMIN, limit=1, after=first["next_after"])

    assert [e["partner_id"] for e in by_partner["entries"]] == [MO_DSAT]
    assert [e["partner_id"] for e in by_dataset["entries"]] == [HK_DEPT, MO_DSAT]
    assert [e["partner_id"] for e in in_window["entries"]] == [MO_DSAT]
    assert [e["partner_id"] for e in first["entries"] + second["entries"]] == [HK_DEPT, MO_DSAT]


async def test_an_auditor_reads_its_own_and_its_regions_datasets_deliveries_only(
    fresh_governed: ServedGoverned, api: httpx.AsyncClient
) -> None:
    await _deliver(fresh_governed, api)
    governance = Governance(fresh_governed.event_store_url)
    try:
        hk_auditor = governance.register_partner(
            "hk", "Audit Commission", Classification.INTERNAL, ("read", "audit")
        ).partner_id
        key = governance.issue_key(hk_auditor, datetime.now(UTC) - timedelta(seconds=1)).key
    finally:
        governance.close()

    gz = await _entries(api, bearer(fresh_governed.store.keys[GZ_BUREAU]))
    hk = await _entries(api, bearer(key))
    refused = await api.get("/v1/deliveries", headers=bearer(fresh_governed.store.keys[HK_DEPT]))

    # Guangzhou's bureau audits: its own delivery; no dataset of gd-guangzhou was delivered.
    assert [(e["partner_id"], e["dataset_id"]) for e in gz["entries"]] == [(GZ_BUREAU, HK)]
    # Hong Kong's auditor: deliveries of Hong Kong's dataset, not Shenzhen's to HK's department.
    assert [(e["partner_id"], e["dataset_id"]) for e in hk["entries"]] == [(GZ_BUREAU, HK)]
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert len((await _entries(api, ADMIN))["entries"]) == len(DELIVERIES)
    accesses = (await api.get("/v1/access-log", params={"limit": 1000}, headers=ADMIN)).json()
    readings = [
        (e["partner_id"], e["allowed"], e["rows"])
        for e in accesses["entries"]
        if e["action"] == "deliveries"
    ]
    assert readings == [(GZ_BUREAU, True, 1), (hk_auditor, True, 1), (HK_DEPT, False, 0),
                        (None, True, 3)]  # fmt: skip
