"""The catalog tells each partner, for every dataset it can see, what it receives and why: the
agreement and purpose, the transformations, the rows, and the classification of its fields;
the administrator sees who can see each dataset; nothing is said of what a partner can't see."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.api.conftest import ServedGoverned, bearer
from tests.integration.api.governed import (
    GRANTS,
    GZ_BUREAU,
    GZ_WINDOW,
    HK,
    HK_DEPT,
    MO,
    MO_BOX,
    MO_DSAT,
    PARTNERS,
    PURPOSE,
    SZ,
)
from tests.support.credentials import ADMIN

pytestmark = pytest.mark.integration

UNLIMITED = {"regions": None, "bbox": None, "start": None, "end": None}
# Written out from the agreements and caps in governed.py, not from the policy code.
EXPECTED: dict[tuple[str, str], dict[str, Any]] = {
    (HK_DEPT, SZ): {
        "reason": "agreement",
        "agreement_id": "sz-hk-traffic",
        "purpose": PURPOSE,
        "classification": "internal",  # volume; operator_id is cut by the crossing's cap
        "transformations": [{"kind": "pseudonymise", "field": "sensor_id"}],
        "row_scope": {**UNLIMITED, "regions": ["gd-shenzhen", "hk"]},
    },
    (HK_DEPT, HK): {
        "reason": "owner-region",
        "agreement_id": None,
        "purpose": None,
        "classification": "internal",  # the partner's clearance
        "transformations": [],
        "row_scope": UNLIMITED,
    },
    (MO_DSAT, SZ): {
        "reason": "agreement",
        "agreement_id": "sz-mo-traffic",
        "purpose": PURPOSE,
        "classification": "public",
        "transformations": [{"kind": "coarsen_time", "field": "observed_at", "unit": "hour"}],
        "row_scope": {**UNLIMITED, "bbox": list(MO_BOX)},
    },
    (MO_DSAT, MO): {
        "reason": "owner-region",
        "agreement_id": None,
        "purpose": None,
        "classification": "public",
        "transformations": [],
        "row_scope": UNLIMITED,
    },
    (GZ_BUREAU, HK): {
        "reason": "agreement",
        "agreement_id": "hk-gz-traffic",
        "purpose": PURPOSE,
        "classification": "public",
        "transformations": [{"kind": "mask", "field": "sensor_id", "keep": 2}],
        "row_scope": {
            **UNLIMITED,
            "start": GZ_WINDOW[0].isoformat(),
            "end": GZ_WINDOW[1].isoformat(),
        },
    },
}


async def _get(api: httpx.AsyncClient, token: str, path: str) -> httpx.Response:
    return await api.get(path, headers=bearer(token))


@pytest.mark.parametrize("partner", PARTNERS)
async def test_each_partner_sees_its_grant_of_each_dataset_it_can_see(
    governed_api: httpx.AsyncClient, served_governed: ServedGoverned, partner: str
) -> None:
    key = served_governed.store.keys[partner]

    listed = (await _get(governed_api, key, "/v1/datasets")).json()["datasets"]

    assert {d["id"] for d in listed} == {d for (p, d) in GRANTS if p == partner}
    for dataset in listed:
        grant = dataset["grant"]
        fields = grant.pop("fields")
        assert grant == EXPECTED[(partner, dataset["id"])]
        assert set(fields) == GRANTS[(partner, dataset["id"])].columns
        assert dataset["classification"] == "sensitive"  # the dataset's own, operator_id's
        assert dataset["access"] is None
        detail = (await _get(governed_api, key, f"/v1/datasets/{dataset['id']}")).json()
        assert detail["grant"] == {**grant, "fields": fields}
        # The detail's fields are those the grant lists, each with its own classification.
        assert [f["name"] for f in detail["fields"]] == fields


async def test_a_dataset_a_partner_cannot_see_answers_as_one_that_does_not_exist(
    governed_api: httpx.AsyncClient, served_governed: ServedGoverned
) -> None:
    key = served_governed.store.keys[GZ_BUREAU]

    hidden = await _get(governed_api, key, f"/v1/datasets/{MO}")
    missing = await _get(governed_api, key, "/v1/datasets/xx.traffic.readings")

    assert hidden.status_code == missing.status_code == 404
    assert hidden.text.replace(MO, "{}") == missing.text.replace("xx.traffic.readings", "{}")
    assert dict(hidden.headers) == dict(missing.headers) | {
        "content-length": hidden.headers["content-length"]
    }


async def test_the_administrator_sees_who_can_see_each_dataset_and_no_grant_of_its_own(
    governed_api: httpx.AsyncClient,
) -> None:
    listed = (await governed_api.get("/v1/datasets", headers=ADMIN)).json()["datasets"]
    detail = (await governed_api.get(f"/v1/datasets/{SZ}", headers=ADMIN)).json()

    access = {d["id"]: {(a["partner_id"], a["agreement_id"]) for a in d["access"]} for d in listed}
    assert access == {
        SZ: {(HK_DEPT, "sz-hk-traffic"), (MO_DSAT, "sz-mo-traffic")},
        HK: {(HK_DEPT, None), (GZ_BUREAU, "hk-gz-traffic")},
        MO: {(MO_DSAT, None)},
    }
    assert all(d["grant"] is None for d in listed)
    assert detail["grant"] is None
    assert "operator_id" in {f["name"] for f in detail["fields"]}
