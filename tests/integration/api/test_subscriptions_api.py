"""Partners subscribe to what their agreements grant, see and change only their own
subscriptions, and cannot set what the platform decides (agreement, state, partner)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from storage.subscriptions import webhook_secret
from tests.integration.api.conftest import ServedGoverned, bearer
from tests.integration.api.governed import GZ_BUREAU, HK, HK_DEPT, MO, MO_DSAT, SZ
from tests.support.credentials import ADMIN

pytestmark = pytest.mark.integration

MISSING_DATASET = "xx.traffic.readings"
MISSING_SUBSCRIPTION = "sub-does-not-exist"


async def _subscribe(api: httpx.AsyncClient, key: str, **body: Any) -> httpx.Response:
    return await api.post("/v1/subscriptions", json=body, headers=bearer(key))


async def _ids(api: httpx.AsyncClient, headers: dict[str, str], **params: str) -> set[str]:
    answer = await api.get("/v1/subscriptions", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return {s["subscription_id"] for s in answer.json()["subscriptions"]}


async def test_a_partner_subscribes_under_the_agreement_that_grants_the_dataset(
    served_governed: ServedGoverned, governed_api: httpx.AsyncClient
) -> None:
    key = served_governed.store.keys[HK_DEPT]

    created = await _subscribe(governed_api, key, dataset_id=SZ, channel="sse")

    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"] == f"/v1/subscriptions/{body['subscription_id']}"
    assert (body["partner_id"], body["dataset_id"], body["agreement_id"]) == (
        HK_DEPT, SZ, "sz-hk-traffic",
    )  # fmt: skip
    assert (body["channel"], body["state"], body["start_position"]) == ("sse", "active", 1)
    assert "signing_secret" not in body
    assert body["history"] == [{"state": "active", "by": HK_DEPT, "reason": ""}]
    progress = body["delivery"]
    assert progress["delivered_position"] == 0
    assert progress["lag"] == progress["head_position"] > 0
    assert progress["records_last_minute"] == 0
    again = await governed_api.get(created.headers["location"], headers=bearer(key))
    assert again.status_code == 200
    # The log head has moved on meanwhile: each request is logged.
    shown = again.json()
    assert shown["delivery"]["head_position"] > progress["head_position"]
    assert {k: v for k, v in shown.items() if k != "delivery"} == {
        k: v for k, v in body.items() if k != "delivery"
    }


async def test_a_webhook_subscription_shows_its_signing_secret_once(
    served_governed: ServedGoverned, governed_api: httpx.AsyncClient
) -> None:
    key = served_governed.store.keys[MO_DSAT]

    created = await _subscribe(
        governed_api, key, dataset_id=SZ, channel="webhook", webhook_url="https://mo.example/in"
    )

    assert created.status_code == 201, created.text
    body = created.json()
    secret = served_governed.app.state.pseudonym_secret
    assert body["signing_secret"] == webhook_secret(secret, body["subscription_id"], 1)
    assert body["secret_version"] == 1
    shown = await governed_api.get(created.headers["location"], headers=bearer(key))
    assert "signing_secret" not in shown.json()
    listed = await governed_api.get("/v1/subscriptions", headers=bearer(key))
    assert "whsec_" not in listed.text


async def test_a_dataset_no_agreement_grants_answers_as_an_unknown_dataset(
    served_governed: ServedGoverned, governed_api: httpx.AsyncClient
) -> None:
    key = served_governed.store.keys[GZ_BUREAU]
    before = await _ids(governed_api, bearer(key))

    refused = await _subscribe(governed_api, key, dataset_id=SZ, channel="sse")
    missing = await _subscribe(governed_api, key, dataset_id=MISSING_DATASET, channel="sse")

    assert refused.status_code == missing.status_code == 404
    assert refused.text.replace(SZ, MISSING_DATASET) == missing.text
    assert await _ids(governed_api, bearer(key)) == before


async def test_a_dataset_seen_as_its_owner_region_is_not_subscribed_to(
    served_governed: ServedGoverned, governed_api: httpx.AsyncClient
) -> None:
    refused = await _subscribe(
        governed_api, served_governed.store.keys[MO_DSAT], dataset_id=MO, channel="sse"
    )

    assert refused.status_code == 409
    assert "agreement" in refused.json()["detail"]


@pytest.mark.parametrize(
    "extra",
    [
        {"state": "paused"},
        {"agreement_id": "sz-mo-traffic"},
        {"partner_id": MO_DSAT},
        {"subscription_id": "sub-mine"},
    ],
    ids=lambda e: next(iter(e)),
)
async def test_a_partner_cannot_set_what_the_platform_decides(
    served_governed: ServedGoverned, governed_api: httpx.AsyncClient, extra: dict[str, str]
) -> None:
    key = served_governed.store.keys[HK_DEPT]
    before = await _ids(governed_api, ADMIN)

    refused = await _subscribe(governed_api, key, dataset_id=SZ, channel="sse", **extra)

    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["parameter"] == next(iter(extra))
    assert await _ids(governed_api, ADMIN) == before


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        ({"channel": "webhook"}, "webhook_url"),
        ({"channel": "sse", "webhook_url": "https://hk.example/in"}, "webhook_url"),
        ({"channel": "webhook", "webhook_url": "ftp://hk.example/in"}, "webhook_url"),
        ({"channel": "carrier-pigeon"}, "channel"),
        ({"channel": "sse", "start_position": 0}, "start_position"),
    ],
)
async def test_malformed_terms_are_refused_and_nothing_is_created(
    served_governed: ServedGoverned,
    governed_api: httpx.AsyncClient,
    body: dict[str, Any],
    parameter: str,
) -> None:
    before = await _ids(governed_api, ADMIN)

    refused = await _subscribe(
        governed_api, served_governed.store.keys[HK_DEPT], dataset_id=SZ, **body
    )

    assert refused.status_code == 422, refused.text
    assert refused.json()["parameter"] == parameter
    assert await _ids(governed_api, ADMIN) == before


async def test_a_partner_sees_and_changes_only_its_own_subscriptions(
    served_governed: ServedGoverned, governed_api: httpx.AsyncClient
) -> None:
    keys = served_governed.store.keys
    mine = (await _subscribe(governed_api, keys[HK_DEPT], dataset_id=SZ, channel="sse")).json()
    sid = mine["subscription_id"]

    assert sid in await _ids(governed_api, bearer(keys[HK_DEPT]))
    assert sid not in await _ids(governed_api, bearer(keys[MO_DSAT]))
    # A partner's filter cannot reach another partner's subscriptions.
    assert sid not in await _ids(governed_api, bearer(keys[MO_DSAT]), partner=HK_DEPT)
    assert sid in await _ids(governed_api, ADMIN, partner=HK_DEPT, dataset=SZ)
    assert sid not in await _ids(governed_api, ADMIN, partner=MO_DSAT)
    for path in ("", "/pause", "/resume", "/cancel", "/redrive", "/events"):
        method = "GET" if path in ("", "/events") else "POST"
        other = await governed_api.request(
            method, f"/v1/subscriptions/{sid}{path}", headers=bearer(keys[MO_DSAT])
        )
        missing = await governed_api.request(
            method, f"/v1/subscriptions/{MISSING_SUBSCRIPTION}{path}", headers=bearer(keys[MO_DSAT])
        )
        assert other.status_code == missing.status_code == 404, path
        assert other.text.replace(sid, MISSING_SUBSCRIPTION) == missing.text
    unchanged = await governed_api.get(f"/v1/subscriptions/{sid}", headers=bearer(keys[HK_DEPT]))
    assert unchanged.json()["state"] == "active"


async def test_the_owner_pauses_resumes_and_cancels_and_wrong_moves_conflict(
    served_governed: ServedGoverned, governed_api: httpx.AsyncClient
) -> None:
    key = served_governed.store.keys[GZ_BUREAU]
    sid = (await _subscribe(governed_api, key, dataset_id=HK, channel="websocket")).json()[
        "subscription_id"
    ]
    url = f"/v1/subscriptions/{sid}"

    async def post(action: str, **body: str) -> httpx.Response:
        return await governed_api.post(f"{url}/{action}", json=body or None, headers=bearer(key))

    paused = await post("pause", reason="maintenance window")
    assert paused.status_code == 200, paused.text
    assert paused.json()["state"] == "paused"
    assert paused.json()["history"][-1] == {
        "state": "paused", "by": GZ_BUREAU, "reason": "maintenance window",
    }  # fmt: skip
    assert (await post("pause")).status_code == 409
    assert (await post("redrive")).status_code == 409
    assert (await post("resume")).json()["state"] == "active"
    assert (await post("pause", note="x")).status_code == 422
    cancelled = await governed_api.post(f"{url}/cancel", headers=ADMIN)
    assert cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["history"][-1]["by"] == "admin"
    conflict = await post("resume")
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    assert "cancelled" in conflict.json()["detail"]


async def test_the_administrator_subscribes_on_a_partners_behalf(
    served_governed: ServedGoverned, governed_api: httpx.AsyncClient
) -> None:
    unnamed = await governed_api.post(
        "/v1/subscriptions", json={"dataset_id": HK, "channel": "sse"}, headers=ADMIN
    )
    assert unnamed.status_code == 422
    assert unnamed.json()["parameter"] == "partner_id"

    created = await governed_api.post(
        "/v1/subscriptions",
        json={"dataset_id": HK, "channel": "sse", "partner_id": GZ_BUREAU, "start_position": 3},
        headers=ADMIN,
    )

    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["partner_id"], body["agreement_id"]) == (GZ_BUREAU, "hk-gz-traffic")
    assert body["history"][0]["by"] == "admin"
    assert body["delivery"]["delivered_position"] == 2
    seen = await governed_api.get(
        f"/v1/subscriptions/{body['subscription_id']}",
        headers=bearer(served_governed.store.keys[GZ_BUREAU]),
    )
    assert seen.status_code == 200
    not_granted = await governed_api.post(
        "/v1/subscriptions",
        json={"dataset_id": SZ, "channel": "sse", "partner_id": GZ_BUREAU},
        headers=ADMIN,
    )
    assert not_granted.status_code == 409


async def test_a_second_kafka_subscription_to_one_topic_conflicts(
    served_governed: ServedGoverned, governed_api: httpx.AsyncClient
) -> None:
    key = served_governed.store.keys[GZ_BUREAU]
    first = await _subscribe(governed_api, key, dataset_id=HK, channel="kafka")
    assert first.status_code == 201, first.text
    assert first.json()["topic"] == f"baylink.deliver.{GZ_BUREAU}.{HK}.v1"

    second = await _subscribe(governed_api, key, dataset_id=HK, channel="kafka")

    assert second.status_code == 409
    assert first.json()["subscription_id"] in second.json()["detail"]


async def test_streaming_a_subscription_of_another_channel_conflicts(
    served_governed: ServedGoverned, governed_api: httpx.AsyncClient
) -> None:
    key = served_governed.store.keys[MO_DSAT]
    sid = (await _subscribe(governed_api, key, dataset_id=SZ, channel="websocket")).json()[
        "subscription_id"
    ]

    refused = await governed_api.get(f"/v1/subscriptions/{sid}/events", headers=bearer(key))

    assert refused.status_code == 409
    assert "websocket, not sse" in refused.json()["detail"]
