"""Seeded test data for schemathesis runs against a live API: for each caller (the
administrator and two partners in different jurisdictions) the operations it may use, and the
ids each operation needs to find something to act on (an agreement in the state a transition
starts from, a subscription of the caller's own, a record within its grant).

Without them a generator sends ids nobody has, every answer is 404 and the run never reaches
the logic behind the route; schemathesis warns about exactly that ("missing test data").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from domain.agreement import AgreementTerms
from domain.classification import Classification
from domain.whitelist import WhitelistRule
from storage.governance import Governance
from storage.subscriptions import Subscriptions
from tests.integration.api.conftest import ServedGoverned, bearer
from tests.integration.api.governed import (
    DATASETS,
    HK,
    HK_DEPT,
    MO,
    MO_DSAT,
    PURPOSE,
    SZ,
    allow_hk_to_mo,
)
from tests.support.credentials import ADMIN_TOKEN

AGREEMENT = "/v1/agreements/{agreement_id}"
SUBSCRIPTION = "/v1/subscriptions/{subscription_id}"
# The transitions, each with the state it starts from.
TRANSITION_FROM = {
    "approve": "proposed",
    "accept": "approved",
    "activate": "accepted",
    "suspend": "active",
    "resume": "suspended",
    "revoke": "active",
}
READS = [
    "GET /v1/datasets",
    "GET /v1/datasets/{dataset_id}",
    "GET /v1/datasets/{dataset_id}/records",
    "GET /v1/datasets/{dataset_id}/aggregate",
    "GET /v1/datasets/{dataset_id}/snapshots",
    "GET /v1/snapshots/{dataset_id}/{snapshot_id}",
    "GET /v1/records/{record_id}/provenance",
    "GET /v1/agreements",
    f"GET {AGREEMENT}",
    "GET /v1/partners",
    "GET /v1/partners/{partner_id}",
]
SUBSCRIBING = [
    "POST /v1/subscriptions",
    "GET /v1/subscriptions",
    f"GET {SUBSCRIPTION}",
    f"POST {SUBSCRIPTION}/pause",
    f"POST {SUBSCRIPTION}/resume",
    f"POST {SUBSCRIPTION}/cancel",
    f"POST {SUBSCRIPTION}/redrive",
    f"GET {SUBSCRIPTION}/events",
]
ADMINISTRATION = [
    "GET /healthz",
    "GET /readyz",
    "GET /v1/access-log",
    "GET /v1/deliveries",
    "POST /v1/partners",
    "POST /v1/partners/{partner_id}/keys",
    "POST /v1/partners/{partner_id}/keys/{key_id}/revoke",
    "GET /v1/whitelist",
    "POST /v1/whitelist/rules",
    "POST /v1/whitelist/rules/{rule_id}/withdraw",
    "POST /v1/agreements",
    *(f"POST {AGREEMENT}/{t}" for t in TRANSITION_FROM),
]


@dataclass
class Run:
    """One caller's run: its token, the operations it may use, and the values they need."""

    name: str
    token: str
    operations: list[str]
    parameters: dict[str, Any]  # for every operation
    per_operation: dict[str, dict[str, Any]] = field(default_factory=dict)

    def config(self, base_url: str, seed: int, max_examples: int) -> str:
        """The run as a schemathesis.toml."""
        lines = [
            f"base-url = {_toml(base_url)}",
            f"seed = {seed}",
            "workers = 1",
            "request-timeout = 10",
            "[generation]",
            f"max-examples = {max_examples}",
            "[headers]",
            f"Authorization = {_toml('Bearer ' + self.token)}",
            "[warnings]",
            "fail-on = true",
            # Valid by the document is not always valid: a validity that ends before it
            # starts, a key to replace that the partner never had, a cursor of another query
            # are refused with 422 or 400, which this check takes for a fault.
            "[checks.positive_data_acceptance]",
            "enabled = false",
            "[phases.stateful]",
            "max-steps = 12",
            "[parameters]",
            *(f"{_toml(k)} = {_toml(v)}" for k, v in self.parameters.items()),
        ]
        for name in self.operations:
            parameters = self.per_operation.get(name, {})
            streams = name.endswith("/events")
            if not (parameters or streams):
                continue
            lines += ["[[operations]]", f"include-name = {_toml(name)}"]
            if streams:
                # The stream stays open: read its first events, then hang up.
                lines += ["max-stream-events = 5", "request-timeout = 3"]
            if any(k.startswith("body.") for k in parameters):
                # The coverage phase builds bodies from the document's examples without the
                # seeded values, so its valid-looking bodies name nothing that exists: it
                # probes refusals only, and valid bodies come from the phases that seed them.
                lines.append('phases.coverage.generation.mode = "negative"')
            if parameters:
                inline = ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in parameters.items())
                lines.append(f"parameters = {{ {inline} }}")
        # Everything not listed is not this caller's to use.
        lines += [
            "[[operations]]",
            "enabled = false",
            f"exclude-name = {_toml(self.operations)}",
        ]
        return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    # JSON strings, numbers, booleans and arrays of them are TOML too.
    return json.dumps(value, ensure_ascii=False)


def seed_runs(served: ServedGoverned, base_url: str) -> list[Run]:
    """Seed the store behind ``served`` (live at ``base_url``) and return the three runs."""
    governance = Governance(served.event_store_url)
    try:
        allow_hk_to_mo(governance, DATASETS[HK])
        _allow_mo_to_hk(governance)
        with httpx.Client(base_url=base_url, timeout=30) as client:
            return [
                _administrator(governance, client, served.event_store_url),
                _partner(governance, client, served, HK_DEPT, HK, SZ, provider="hk"),
                _partner(governance, client, served, MO_DSAT, MO, HK, provider="mo"),
            ]
    finally:
        governance.close()


def _administrator(governance: Governance, client: httpx.Client, url: str) -> Run:
    now = datetime.now(UTC)
    throwaway = governance.register_partner("mo", "Schemathesis Fixture", Classification.PUBLIC)
    key_id = governance.issue_key(throwaway.partner_id, now).key_id
    governance.add_rule(
        WhitelistRule(
            "withdrawable", "MO", "CN", Classification.PUBLIC, frozenset({PURPOSE}),
            "GBA-SC-2026-0099", now - timedelta(days=1), dataset_kind=DATASETS[MO].kind,
        )
    )  # fmt: skip
    per_operation: dict[str, dict[str, Any]] = {
        f"POST {AGREEMENT}/{name}": {
            "path.agreement_id": _agreement_in(governance, f"admin-{name}", state, "hk", MO_DSAT)
        }
        for name, state in TRANSITION_FROM.items()
    }
    per_operation |= {
        "POST /v1/partners/{partner_id}/keys/{key_id}/revoke": {"path.key_id": key_id},
        "POST /v1/whitelist/rules/{rule_id}/withdraw": {"path.rule_id": "withdrawable"},
        # Proposals of HK data for Macao, which the whitelist allows.
        "POST /v1/agreements": {
            "body.provider_region": "hk",
            "body.consumer_partner": MO_DSAT,
            "body.datasets": [HK],
            "body.purpose": PURPOSE,
        },
        # Rules between jurisdictions the platform knows.
        "POST /v1/whitelist/rules": {
            "body.source_jurisdiction": "HK",
            "body.destination_jurisdiction": "MO",
        },
        "POST /v1/partners": {"body.region": "mo"},
        "POST /v1/subscriptions": {"body.partner_id": MO_DSAT, "body.dataset_id": HK},
    }
    token = ADMIN_TOKEN
    per_operation |= _subscription_targets(client, url, token, HK, partner_id=MO_DSAT)
    return Run(
        "administrator",
        token,
        [*READS, *SUBSCRIBING, *ADMINISTRATION],
        {
            "path.dataset_id": SZ,
            "path.agreement_id": "sz-hk-traffic",
            "path.partner_id": throwaway.partner_id,
            **_dataset_values(client, token, SZ),
        },
        per_operation,
    )


def _partner(
    governance: Governance,
    client: httpx.Client,
    served: ServedGoverned,
    partner_id: str,
    own_dataset: str,
    shared_dataset: str,
    provider: str,
) -> Run:
    """A partner reads its own region's dataset and subscribes to one shared with it; as a
    provider it approves, as a consumer it accepts."""
    token = served.store.keys[partner_id]
    consumer = MO_DSAT if provider == "hk" else HK_DEPT
    per_operation: dict[str, dict[str, Any]] = {
        f"POST {AGREEMENT}/approve": {
            "path.agreement_id": _agreement_in(
                governance, f"{partner_id}-approves", "proposed", provider, consumer
            )
        },
        f"POST {AGREEMENT}/accept": {
            "path.agreement_id": _agreement_in(
                governance,
                f"{partner_id}-accepts",
                "approved",
                "mo" if provider == "hk" else "hk",
                partner_id,
            )
        },
        "POST /v1/subscriptions": {"body.dataset_id": shared_dataset},
    }
    per_operation |= _subscription_targets(client, served.event_store_url, token, shared_dataset)
    return Run(
        partner_id,
        token,
        [*READS, *SUBSCRIBING, f"POST {AGREEMENT}/approve", f"POST {AGREEMENT}/accept"],
        {
            "path.dataset_id": own_dataset,
            "path.partner_id": partner_id,
            "path.agreement_id": f"{partner_id}-accepts",
            **_dataset_values(client, token, own_dataset),
        },
        per_operation,
    )


def _agreement_in(
    governance: Governance, agreement_id: str, state: str, provider: str, consumer: str
) -> str:
    """An agreement of the provider's dataset for the consumer, brought to ``state``."""
    now = datetime.now(UTC)
    dataset = {"hk": HK, "mo": MO}[provider]
    terms = AgreementTerms(
        agreement_id=agreement_id,
        provider_region=provider,
        consumer_partner=consumer,
        datasets=frozenset({dataset}),
        purpose=PURPOSE,
        valid_from=now - timedelta(days=1),
    )
    steps: list[Callable[[], object]] = [
        lambda: governance.propose(terms, provider, DATASETS.__getitem__),
        lambda: governance.approve(agreement_id, provider),
        lambda: governance.accept(agreement_id, consumer),
        lambda: governance.activate(agreement_id, "admin", DATASETS.__getitem__, now),
        lambda: governance.suspend(agreement_id, "admin", "seeded suspended"),
    ]
    reached = ["proposed", "approved", "accepted", "active", "suspended"].index(state)
    for step in steps[: reached + 1]:
        step()
    return agreement_id


def _allow_mo_to_hk(governance: Governance) -> None:
    governance.add_rule(
        WhitelistRule(
            "mo-hk-traffic", "MO", "HK", Classification.INTERNAL, frozenset({PURPOSE}),
            "GBA-SC-2026-0005", datetime.now(UTC) - timedelta(days=30),
            dataset_kind=DATASETS[MO].kind,
        )
    )  # fmt: skip


def _subscription_targets(
    client: httpx.Client,
    event_store_url: str,
    token: str,
    dataset_id: str,
    partner_id: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Subscriptions over HTTP, each in the state its operation starts from."""

    def subscribe(channel: str) -> str:
        body: dict[str, Any] = {"dataset_id": dataset_id, "channel": channel}
        if channel == "webhook":
            body["webhook_url"] = "https://receiver.example/baylink"
        if partner_id is not None:
            body["partner_id"] = partner_id
        answer = client.post("/v1/subscriptions", json=body, headers=bearer(token))
        answer.raise_for_status()
        return str(answer.json()["subscription_id"])

    streamed, paused, live = subscribe("sse"), subscribe("websocket"), subscribe("websocket")
    client.post(
        f"/v1/subscriptions/{paused}/pause", json={"reason": "seeded"}, headers=bearer(token)
    ).raise_for_status()
    dead = subscribe("webhook")
    subscriptions = Subscriptions(event_store_url)
    try:
        subscriptions.dead_letter(dead, 1, 4, "seeded: the receiver kept failing")
    finally:
        subscriptions.close()
    return {
        f"GET {SUBSCRIPTION}": {"path.subscription_id": streamed},
        f"GET {SUBSCRIPTION}/events": {"path.subscription_id": streamed},
        f"POST {SUBSCRIPTION}/pause": {"path.subscription_id": live},
        f"POST {SUBSCRIPTION}/cancel": {"path.subscription_id": live},
        f"POST {SUBSCRIPTION}/resume": {"path.subscription_id": paused},
        f"POST {SUBSCRIPTION}/redrive": {"path.subscription_id": dead},
    }


def _dataset_values(client: httpx.Client, token: str, dataset_id: str) -> dict[str, Any]:
    """A snapshot and a record of the dataset the caller can see."""
    snapshots = client.get(f"/v1/datasets/{dataset_id}/snapshots", headers=bearer(token))
    snapshots.raise_for_status()
    records = client.get(
        f"/v1/datasets/{dataset_id}/records", params={"limit": 1}, headers=bearer(token)
    )
    records.raise_for_status()
    return {
        "path.snapshot_id": snapshots.json()["snapshots"][0]["snapshot_id"],
        "path.record_id": records.json()["records"][0]["record_id"],
    }


def write_config(run: Run, directory: Path, base_url: str, seed: int, max_examples: int) -> Path:
    path = directory / f"schemathesis-{run.name}.toml"
    path.write_text(run.config(base_url, seed, max_examples))
    return path
