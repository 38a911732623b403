"""A governed store the auditors' questions are asked of: deliveries to three subscribers,
granted and refused reads of the query API, an agreement suspended and resumed, and a
whitelist rule added and withdrawn over HTTP, and a Hong Kong auditor with the audit scope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from api.subscription_services import SubscriptionServices
from domain.classification import Classification
from storage.governance import Governance
from tests.integration.api.conftest import ServedGoverned, bearer, client_of
from tests.integration.api.governed import GZ_BUREAU, HK, HK_DEPT, MO_DSAT, PURPOSE, SZ
from tests.support.credentials import ADMIN

LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
DELIVERIES = [
    (HK_DEPT, SZ, LONG_AGO),
    (MO_DSAT, SZ, LONG_AGO + timedelta(days=1)),
    (GZ_BUREAU, HK, LONG_AGO + timedelta(days=2)),
]
# (partner, dataset, rows asked for): granted reads of the query API.
READS = [(HK_DEPT, SZ, 7), (MO_DSAT, SZ, 5), (GZ_BUREAU, HK, 3), (HK_DEPT, SZ, 2)]


@dataclass
class Seeded:
    api: httpx.AsyncClient
    served: ServedGoverned
    hk_auditor: dict[str, str]

    def key(self, partner: str) -> dict[str, str]:
        return bearer(self.served.store.keys[partner])


@asynccontextmanager
async def seeding(fresh_governed: ServedGoverned) -> AsyncIterator[Seeded]:
    """Deliveries to three subscribers, granted and refused reads of the query API, an
    agreement suspended and resumed, and a whitelist rule added and withdrawn over HTTP."""
    governance = Governance(fresh_governed.event_store_url)
    try:
        auditor = governance.register_partner(
            "hk", "Audit Commission", Classification.INTERNAL, ("read", "audit")
        ).partner_id
        key = governance.issue_key(auditor, datetime.now(UTC) - timedelta(seconds=1)).key
    finally:
        governance.close()
    async with client_of(fresh_governed.app) as api:
        seeded = Seeded(api, fresh_governed, bearer(key))
        services: SubscriptionServices = fresh_governed.app.state.subscription_services
        for partner, dataset_id, at in DELIVERIES:
            answer = await api.post(
                "/v1/subscriptions",
                json={"dataset_id": dataset_id, "channel": "sse"},
                headers=seeded.key(partner),
            )
            assert answer.status_code == 201, answer.text
            info = services.subscriptions.subscription(answer.json()["subscription_id"])
            page = services.feed.page(info, 0)
            assert page.delivered
            services.log.record(info, page, 1, track=False, at=at)
        for partner, dataset_id, limit in READS:
            read = await api.get(
                f"/v1/datasets/{dataset_id}/records",
                params={"limit": limit},
                headers=seeded.key(partner),
            )
            assert read.status_code == 200, read.text
        listed = await api.get(f"/v1/datasets/{SZ}/snapshots", headers=seeded.key(HK_DEPT))
        assert listed.status_code == 200, listed.text
        snapshot_id = listed.json()["snapshots"][0]["snapshot_id"]
        read = await api.get(f"/v1/snapshots/{SZ}/{snapshot_id}", headers=seeded.key(HK_DEPT))
        assert read.status_code == 200, read.text
        refused = await api.get(f"/v1/datasets/{HK}/records", headers=seeded.key(MO_DSAT))
        assert refused.status_code == 404
        for step in ("suspend", "resume"):
            changed = await api.post(
                f"/v1/agreements/sz-mo-traffic/{step}",
                json={"reason": "sensor recalibration"} if step == "suspend" else None,
                headers=ADMIN,
            )
            assert changed.status_code == 200, changed.text
        rule = {
            "rule_id": "hk-mo-traffic",
            "source_jurisdiction": "HK",
            "destination_jurisdiction": "MO",
            "dataset_kind": "traffic",
            "max_classification": "internal",
            "purposes": [PURPOSE],
            "legal_basis": "GBA-SC-2026-0042",
            "valid_from": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        }
        added = await api.post("/v1/whitelist/rules", json=rule, headers=ADMIN)
        assert added.status_code == 201, added.text
        withdrawn = await api.post(
            "/v1/whitelist/rules/hk-mo-traffic/withdraw",
            json={"reason": "the filing lapsed"},
            headers=ADMIN,
        )
        assert withdrawn.status_code == 200, withdrawn.text
        yield seeded
