"""The questions auditors ask, over HTTP against a real store: who received a dataset (by
subscription and by the query API), every policy decision about a partner, and the history of
an agreement and of a whitelist rule; each answer names the log positions it rests on, each
question is itself an access, and a partner asks only within its audit scope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.utils import get_topic

from domain.access import AccessRecord
from domain.agreement import SharingAgreement
from domain.delivery import DeliveryRecord
from domain.merkle import verify_inclusion
from storage.tree_heads import TreeHeadLedger, TreeHeadRecorder
from tests.integration.api.conftest import ServedGoverned
from tests.integration.api.governed import GZ_BUREAU, HK, HK_DEPT, MO_DSAT, SZ
from tests.integration.api.questioned import LONG_AGO, Seeded, seeding
from tests.support.credentials import ADMIN

pytestmark = pytest.mark.integration

EVERY = {"limit": 1000}
NODE_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


@pytest.fixture
async def seeded(fresh_governed: ServedGoverned) -> AsyncIterator[Seeded]:
    async with seeding(fresh_governed) as seeded:
        yield seeded


async def _ask(api: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any) -> Any:
    answer = await api.get(f"/v1/audit/{path}", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def _log(api: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = (await _ask_root(api, path))["entries"]
    return entries


async def _ask_root(api: httpx.AsyncClient, path: str) -> Any:
    answer = await api.get(f"/v1/{path}", params=EVERY, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _expected_recipients(
    deliveries: list[dict[str, Any]], accesses: list[dict[str, Any]], dataset_id: str
) -> dict[tuple[str, str, str | None], tuple[int, list[int], list[int]]]:
    """(partner, channel, agreement) -> (records, whitelist versions, positions), read from
    the delivery and access logs independently of the answer."""
    expected: dict[tuple[str, str, str | None], tuple[int, list[int], list[int]]] = {}
    rows = [
        (e["partner_id"], e["channel"], e["agreement_id"], e["records"],
         e["whitelist_version"], e["position"])
        for e in deliveries
        if e["dataset_id"] == dataset_id
    ] + [
        (e["partner_id"], "snapshot" if e["action"] == "snapshot" else "query",
         e["agreement_id"], e["rows"], e["whitelist_version"], e["position"])
        for e in accesses
        if e["dataset_id"] == dataset_id and e["action"] in ("records", "snapshot")
        and e["allowed"]
    ]  # fmt: skip
    for partner, channel, agreement, records, version, position in rows:
        count, versions, positions = expected.get((partner, channel, agreement), (0, [], []))
        expected[(partner, channel, agreement)] = (
            count + records,
            sorted({*versions, version}),
            sorted([*positions, position]),
        )
    return expected


def _as_found(
    answer: dict[str, Any],
) -> dict[tuple[str, str, str | None], tuple[int, list[int], list[int]]]:
    return {
        (r["partner_id"], r["channel"], r["agreement_id"]): (
            r["records"], r["whitelist_versions"], r["positions"],
        )
        for r in answer["recipients"]
    }  # fmt: skip


async def test_the_administrator_learns_who_received_a_dataset_by_subscription_and_query(
    seeded: Seeded,
) -> None:
    api = seeded.api
    deliveries, accesses = await _log(api, "deliveries"), await _log(api, "access-log")

    answer = await _ask(api, "recipients", ADMIN, dataset=SZ)

    found = _as_found(answer)
    assert set(found) == {
        (HK_DEPT, "sse", "sz-hk-traffic"), (HK_DEPT, "query", "sz-hk-traffic"),
        (HK_DEPT, "snapshot", "sz-hk-traffic"),
        (MO_DSAT, "sse", "sz-mo-traffic"), (MO_DSAT, "query", "sz-mo-traffic"),
    }  # fmt: skip
    assert found[(HK_DEPT, "snapshot", "sz-hk-traffic")][0] > 0
    assert found == _expected_recipients(deliveries, accesses, SZ)
    assert found[(HK_DEPT, "query", "sz-hk-traffic")][0] == 7 + 2
    assert answer["next_after"] is None
    # Every position is a delivery or a granted read of this dataset.
    named = {p for r in answer["recipients"] for p in r["positions"]}
    logged = {e["position"]: e for e in deliveries + accesses}
    assert all(logged[p]["dataset_id"] == SZ for p in named)


async def test_recipients_narrow_to_a_period_and_page_through_the_log(seeded: Seeded) -> None:
    api = seeded.api
    whole = _as_found(await _ask(api, "recipients", ADMIN, dataset=SZ))

    window = await _ask(
        api,
        "recipients",
        ADMIN,
        dataset=SZ,
        since=(LONG_AGO + timedelta(hours=12)).isoformat(),
        until=(LONG_AGO + timedelta(days=2)).isoformat(),
    )
    first = await _ask(api, "recipients", ADMIN, dataset=SZ, limit=2)
    rest = await _ask(api, "recipients", ADMIN, dataset=SZ, after=first["next_after"])

    assert [(r["partner_id"], r["channel"]) for r in window["recipients"]] == [(MO_DSAT, "sse")]
    assert window["recipients"][0]["first_at"] == window["recipients"][0]["last_at"]
    assert first["next_after"] is not None
    assert rest["next_after"] is None
    paged: dict[tuple[str, str, str | None], list[int]] = {}
    for page in (first, rest):
        for r in page["recipients"]:
            paged.setdefault((r["partner_id"], r["channel"], r["agreement_id"]), []).extend(
                r["positions"]
            )
    assert paged == {key: positions for key, (_n, _v, positions) in whole.items()}


async def test_every_decision_about_a_partner_granted_and_refused_with_its_grounds(
    seeded: Seeded,
) -> None:
    api = seeded.api
    accesses = await _log(api, "access-log")
    deliveries = await _log(api, "deliveries")

    answer = await _ask(api, "decisions", ADMIN, partner=MO_DSAT)
    first = await _ask(api, "decisions", ADMIN, partner=MO_DSAT, limit=1)
    after = first["next_after"]
    second = await _ask(api, "decisions", ADMIN, partner=MO_DSAT, limit=1, after=after)

    decided = [
        e for e in accesses if e["partner_id"] == MO_DSAT and e["whitelist_version"] is not None
    ]
    expected = sorted(
        [(e["position"], e["action"], e["allowed"], e["reason"], e["agreement_id"],
          e["whitelist_version"]) for e in decided]
        + [(e["position"], "delivery", True, "agreement", e["agreement_id"],
            e["whitelist_version"]) for e in deliveries if e["partner_id"] == MO_DSAT]
    )  # fmt: skip
    assert [
        (d["position"], d["source"], d["allowed"], d["reason"], d["agreement_id"],
         d["whitelist_version"])
        for d in answer["decisions"]
    ] == expected  # fmt: skip
    refusals = [d for d in answer["decisions"] if not d["allowed"]]
    assert [(d["source"], d["dataset_id"], d["records"]) for d in refusals] == [("records", HK, 0)]
    assert refusals[0]["reason"]
    assert {"delivery", "records"} <= {d["source"] for d in answer["decisions"]}
    assert first["decisions"] + second["decisions"] == answer["decisions"][:2]


async def test_the_history_of_an_agreement_in_order_with_who_changed_it(seeded: Seeded) -> None:
    answer = await _ask(seeded.api, "agreements/sz-mo-traffic/history", ADMIN)

    events = answer["events"]
    assert [(e["event"], e["by"]) for e in events] == [
        ("proposed", "gd-shenzhen"), ("approved", "gd-shenzhen"), ("accepted", MO_DSAT),
        ("activated", "admin"), ("suspended", "admin"), ("resumed", "admin"),
    ]  # fmt: skip
    assert events[0]["terms"]["consumer_partner"] == MO_DSAT
    assert events[3]["whitelist_rules"] == ["cn-mo-traffic"]
    assert events[4]["reason"] == "sensor recalibration"
    positions = [e["position"] for e in events]
    assert positions == sorted(set(positions))
    times = [e["at"] for e in events]
    assert [datetime.fromisoformat(t) for t in times] == sorted(
        datetime.fromisoformat(t) for t in times
    )


async def test_the_history_of_a_whitelist_rule_names_versions_requests_and_agreements(
    seeded: Seeded,
) -> None:
    api = seeded.api
    accesses = await _log(api, "access-log")

    http_rule = await _ask(api, "whitelist/hk-mo-traffic/history", ADMIN)
    seeded_rule = await _ask(api, "whitelist/cn-mo-traffic/history", ADMIN)

    added, withdrawn = http_rule["events"]
    assert (added["event"], withdrawn["event"]) == ("rule-added", "rule-withdrawn")
    assert added["rule"]["destination_jurisdiction"] == "MO"
    assert withdrawn["reason"] == "the filing lapsed"
    assert withdrawn["whitelist_version"] == added["whitelist_version"] + 1
    requests = {e["position"]: e for e in accesses}
    assert requests[added["request_position"]]["action"] == "whitelist-add"
    assert requests[withdrawn["request_position"]]["action"] == "whitelist-withdraw"
    assert added["position"] < added["request_position"] < withdrawn["position"]
    assert (added["by"], withdrawn["by"]) == ("admin", "admin")
    # Added in the store directly, not over HTTP: no request, so no one to name.
    assert [(e["event"], e["agreement_id"], e["by"]) for e in seeded_rule["events"]] == [
        ("rule-added", None, None),
        ("cited-by-activation", "sz-mo-traffic", "admin"),
        ("cited-by-resumption", "sz-mo-traffic", "admin"),
    ]


async def test_a_partner_asks_only_within_its_audit_scope(seeded: Seeded) -> None:
    api, hk_auditor, gz = seeded.api, seeded.hk_auditor, seeded.key(GZ_BUREAU)

    hk_of_hk = await _ask(api, "recipients", hk_auditor, dataset=HK)
    hk_of_sz = await _ask(api, "recipients", hk_auditor, dataset=SZ)
    gz_of_hk = await _ask(api, "recipients", gz, dataset=HK)
    gz_decisions_of_mo = await _ask(api, "decisions", gz, partner=MO_DSAT)
    hk_decisions_of_mo = await _ask(api, "decisions", hk_auditor, partner=MO_DSAT)

    # Hong Kong's auditor: who received Hong Kong's dataset; nothing of Shenzhen's.
    assert {(r["partner_id"], r["channel"]) for r in hk_of_hk["recipients"]} == {
        (GZ_BUREAU, "sse"), (GZ_BUREAU, "query"),
    }  # fmt: skip
    assert hk_of_sz["recipients"] == []
    assert {r["partner_id"] for r in gz_of_hk["recipients"]} == {GZ_BUREAU}
    # Macao's decisions: none about Guangzhou's datasets; the refused read of HK's for HK.
    assert gz_decisions_of_mo["decisions"] == []
    assert [(d["dataset_id"], d["allowed"]) for d in hk_decisions_of_mo["decisions"]] == [
        (HK, False)
    ]
    # Agreements it is party to; others as if they did not exist.
    assert (await api.get("/v1/audit/agreements/hk-gz-traffic/history", headers=gz)).is_success
    beyond = await api.get("/v1/audit/agreements/sz-mo-traffic/history", headers=gz)
    missing = await api.get("/v1/audit/agreements/no-such-agreement/history", headers=gz)
    assert (beyond.status_code, missing.status_code) == (404, 404)
    assert beyond.json()["detail"].replace("sz-mo-traffic", "X") == missing.json()[
        "detail"
    ].replace("no-such-agreement", "X")
    # Rules that let its region's datasets out, or that its agreements rest on; others as if
    # they did not exist.
    for partner, rule_id, status in [
        (hk_auditor, "hk-cn-traffic", 200),  # lets HK's dataset out to CN
        (hk_auditor, "cn-hk-traffic", 404),  # lets CN's data into HK, under HK_DEPT's agreement
        (hk_auditor, "cn-mo-traffic", 404),
        (gz, "hk-cn-traffic", 200),  # its agreement hk-gz-traffic was activated under it
        (gz, "cn-hk-traffic", 404),
        (gz, "no-such-rule", 404),
    ]:
        answer = await api.get(f"/v1/audit/whitelist/{rule_id}/history", headers=partner)
        assert answer.status_code == status, (rule_id, answer.text)
        if status == 404:
            assert answer.json()["detail"] == f"no whitelist rule {rule_id!r}"
    # A partner without the audit scope asks nothing.
    for path in (
        "recipients?dataset=" + SZ,
        "decisions?partner=" + HK_DEPT,
        "agreements/sz-hk-traffic/history",
        "whitelist/cn-hk-traffic/history",
    ):
        refused = await api.get(f"/v1/audit/{path}", headers=seeded.key(HK_DEPT))
        assert refused.status_code == 403, path
        assert refused.headers["content-type"] == "application/problem+json"


async def test_bad_parameters_are_named(seeded: Seeded) -> None:
    api = seeded.api
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("recipients", {}, 422, "dataset"),
        ("recipients", {"dataset": "Not A Dataset"}, 422, "dataset"),
        ("recipients", {"dataset": SZ, "since": "2026-01-01T00:00:00"}, 400, "since"),
        ("recipients", {"dataset": SZ, "since": "yesterday"}, 422, "since"),
        ("recipients", {"dataset": SZ, "since": "2026-02-01T00:00:00Z",
                        "until": "2026-01-01T00:00:00Z"}, 400, "until"),
        ("recipients", {"dataset": SZ, "limit": 0}, 422, "limit"),
        ("decisions", {}, 422, "partner"),
        ("decisions", {"partner": MO_DSAT, "after": -1}, 422, "after"),
    ]  # fmt: skip
    for path, params, status, named in cases:
        answer = await api.get(f"/v1/audit/{path}", params=params, headers=ADMIN)
        assert answer.status_code == status, (path, params, answer.text)
        assert named in answer.text, (path, params, answer.text)
    unknown = await api.get("/v1/audit/recipients", params={"dataset": "no.such"}, headers=ADMIN)
    assert unknown.status_code == 404
    nobody = await api.get("/v1/audit/decisions", params={"partner": "nobody"}, headers=ADMIN)
    assert nobody.status_code == 404
    no_rule = await api.get("/v1/audit/whitelist/no-such-rule/history", headers=ADMIN)
    assert no_rule.status_code == 404


async def test_every_question_asked_is_an_access(seeded: Seeded) -> None:
    api = seeded.api
    before = len(await _log(api, "access-log"))

    await _ask(api, "recipients", seeded.key(GZ_BUREAU), dataset=HK)
    await _ask(api, "decisions", ADMIN, partner=MO_DSAT)
    refused = await api.get(
        "/v1/audit/agreements/sz-hk-traffic/history", headers=seeded.key(HK_DEPT)
    )
    await _ask(api, "whitelist/cn-hk-traffic/history", ADMIN)

    assert refused.status_code == 403
    asked = [
        (e["partner_id"], e["action"], e["allowed"], e["reason"], e["dataset_id"],
         e["agreement_id"])
        for e in (await _log(api, "access-log"))[before:]
        if e["action"].startswith("audit-")
    ]  # fmt: skip
    assert asked == [
        (GZ_BUREAU, "audit-recipients", True, "audit", HK, None),
        (None, "audit-decisions", True, f"audit: partner {MO_DSAT}", None, None),
        (HK_DEPT, "audit-agreement-history", False, "no-audit-scope", None, "sz-hk-traffic"),
        (None, "audit-rule-history", True, "audit: rule cn-hk-traffic", None, None),
    ]


async def test_every_position_an_answer_names_is_proven_to_be_its_event(seeded: Seeded) -> None:
    api = seeded.api
    ledger = TreeHeadLedger(seeded.served.event_store_url)
    try:
        TreeHeadRecorder(ledger, NODE_KEY, every_events=10**6, every_seconds=0.0).run_once()
    finally:
        ledger.close()
    head = await _ask(api, "tree-heads/latest", ADMIN)
    recipients = await _ask(api, "recipients", ADMIN, dataset=SZ)
    history = await _ask(api, "agreements/sz-mo-traffic/history", ADMIN)

    async def leaf(position: int) -> dict[str, Any]:
        proof = await _ask(
            api, "proofs/inclusion", ADMIN, position=position, tree_size=head["tree_size"]
        )
        verify_inclusion(
            bytes.fromhex(proof["leaf_hash"]),
            proof["leaf_index"],
            head["tree_size"],
            tuple(bytes.fromhex(h) for h in proof["audit_path"]),
            bytes.fromhex(head["root"]),
        )
        found: dict[str, Any] = proof["leaf"]
        return found

    for recipient in recipients["recipients"]:
        record = DeliveryRecord if recipient["channel"] == "sse" else AccessRecord
        for position in recipient["positions"]:
            assert (await leaf(position))["topic"] == get_topic(vars(record)["Recorded"])
    agreement = str(SharingAgreement.create_id("sz-mo-traffic"))
    for version, event in enumerate(history["events"], start=1):
        found = await leaf(event["position"])
        assert (found["originator_id"], found["originator_version"]) == (agreement, version)
