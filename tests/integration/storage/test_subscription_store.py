"""Subscriptions taken out under agreements, stored on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.agreement import AgreementTerms
from domain.classification import Classification
from domain.dataset import DatasetDefinition, DatasetKind
from domain.errors import SubscriptionNotFoundError, SubscriptionStateError, SubscriptionTermsError
from domain.policy import Caller
from domain.subscription import Channel, SubscriptionState
from domain.whitelist import WhitelistRule
from storage.governance import Governance
from storage.subscriptions import Subscriptions, webhook_secret
from tests.unit.test_stored_event_topics import frozen_topics

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ROAD_SPEED = DatasetDefinition.from_dict(
    {
        "id": "gd-shenzhen.traffic.road-speed",
        "kind": "traffic",
        "owner_region": "gd-shenzhen",
        "title": "Road speed",
        "time_field": "at",
        "key_fields": ["link", "at"],
        "fields": [
            {"name": "link", "type": "string"},
            {"name": "at", "type": "timestamp"},
            {"name": "speed", "type": "float64"},
        ],
    }
)
BUS_STOPS = DatasetDefinition.from_dict(
    {
        "id": "gd-shenzhen.traffic.bus-stops",
        "kind": "traffic",
        "owner_region": "gd-shenzhen",
        "title": "Bus stops",
        "time_field": "at",
        "key_fields": ["stop", "at"],
        "fields": [
            {"name": "stop", "type": "string"},
            {"name": "at", "type": "timestamp"},
        ],
    }
)
DATASETS = {d.id: d for d in (ROAD_SPEED, BUS_STOPS)}
HK = Caller("hk-transport-department", "hk", Classification.INTERNAL)
MO = Caller("mo-dsat", "mo", Classification.INTERNAL)


@pytest.fixture(params=["sqlite", "postgresql"])
def stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Governance, Subscriptions]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    governance, subscriptions = Governance(url), Subscriptions(url)
    try:
        governance.register_partner("hk", "Transport Department", Classification.INTERNAL)
        governance.register_partner("mo", "DSAT", Classification.INTERNAL)
        governance.add_rule(
            WhitelistRule(
                rule_id="cn-hk-traffic",
                source_jurisdiction="CN",
                destination_jurisdiction="HK",
                dataset_kind=DatasetKind.TRAFFIC,
                max_classification=Classification.INTERNAL,
                purposes=frozenset({"traffic-management"}),
                legal_basis="GBA-SC-2026-0001",
                valid_from=NOW - timedelta(days=100),
            )
        )
        terms = AgreementTerms(
            agreement_id="sz-hk-2026",
            provider_region="gd-shenzhen",
            consumer_partner=HK.partner_id or "",
            datasets=frozenset({ROAD_SPEED.id}),
            purpose="traffic-management",
            valid_from=NOW - timedelta(days=10),
        )
        governance.propose(terms, "gd-shenzhen", DATASETS.__getitem__)
        governance.approve("sz-hk-2026", "gd-shenzhen")
        governance.accept("sz-hk-2026", "hk-transport-department")
        governance.activate("sz-hk-2026", "admin", DATASETS.__getitem__, NOW)
        yield governance, subscriptions
    finally:
        subscriptions.close()
        governance.close()


def test_a_partner_subscribes_under_the_agreement_that_grants_the_dataset(
    stores: tuple[Governance, Subscriptions],
) -> None:
    governance, subscriptions = stores

    info = subscriptions.subscribe(governance, HK, ROAD_SPEED, Channel.KAFKA, "hk", at=NOW)

    assert info.state is SubscriptionState.ACTIVE
    assert info.terms.agreement_id == "sz-hk-2026"
    assert (
        info.terms.topic
        == "baylink.deliver.hk-transport-department.gd-shenzhen.traffic.road-speed.v1"
    )
    assert subscriptions.subscription(info.terms.subscription_id) == info
    assert [s.terms.subscription_id for s in subscriptions.subscriptions(HK.partner_id)] == [
        info.terms.subscription_id
    ]
    assert subscriptions.subscriptions(MO.partner_id) == []


@pytest.mark.parametrize(
    ("caller", "dataset", "message"),
    [
        (MO, ROAD_SPEED, "'mo-dsat' has no active agreement that grants"),
        (HK, BUS_STOPS, "has no active agreement that grants gd-shenzhen.traffic.bus-stops"),
        (Caller.administrator(), ROAD_SPEED, "only a partner subscribes"),
    ],
)
def test_no_subscription_without_a_grant(
    stores: tuple[Governance, Subscriptions],
    caller: Caller,
    dataset: DatasetDefinition,
    message: str,
) -> None:
    governance, subscriptions = stores

    with pytest.raises(SubscriptionTermsError, match=message):
        subscriptions.subscribe(governance, caller, dataset, Channel.SSE, "x", at=NOW)

    assert subscriptions.subscriptions() == []


def test_a_suspended_agreement_takes_no_new_subscriptions(
    stores: tuple[Governance, Subscriptions],
) -> None:
    governance, subscriptions = stores
    governance.suspend("sz-hk-2026", "gd-shenzhen", "audit")

    with pytest.raises(SubscriptionTermsError, match="no active agreement"):
        subscriptions.subscribe(governance, HK, ROAD_SPEED, Channel.SSE, "hk", at=NOW)


def test_the_lifecycle_is_stored(stores: tuple[Governance, Subscriptions]) -> None:
    governance, subscriptions = stores
    info = subscriptions.subscribe(
        governance,
        HK,
        ROAD_SPEED,
        Channel.WEBHOOK,
        "hk",
        webhook_url="https://td.example.hk/baylink",
        start_position=5,
        at=NOW,
    )
    sid = info.terms.subscription_id

    subscriptions.pause(sid, "hk", "maintenance")
    subscriptions.resume(sid, "hk")
    subscriptions.dead_letter(sid, position=12, attempts=8, reason="HTTP 500")
    subscriptions.rotate_secret(sid, "hk")
    subscriptions.redrive(sid, "admin")
    stored = subscriptions.subscription(sid)

    assert stored.state is SubscriptionState.ACTIVE
    assert (stored.dead_letter_position, stored.dead_letter_attempts) == (12, 8)
    assert stored.secret_version == 2
    assert [h[0] for h in stored.history] == [
        "active", "paused", "active", "dead-lettered", "secret-rotated", "active",
    ]  # fmt: skip
    subscriptions.cancel(sid, "hk", "done")
    with pytest.raises(SubscriptionStateError, match="is cancelled"):
        subscriptions.resume(sid, "hk")
    with pytest.raises(SubscriptionNotFoundError, match="no subscription 'sub-none'"):
        subscriptions.pause("sub-none", "hk", "")
    stored_topics = {
        n.topic
        for n in subscriptions.recorder.select_notifications(start=None, limit=1000)
        if n.topic.startswith("domain.subscription:")
    }
    assert stored_topics == {t for t in frozen_topics() if t.startswith("domain.subscription:")}


def test_webhook_secrets_differ_per_subscription_version_and_platform() -> None:
    secrets = {
        webhook_secret(platform, sid, version)
        for platform in (b"one", b"two")
        for sid in ("sub-a", "sub-b")
        for version in (1, 2)
    }

    assert len(secrets) == 8
    assert all(s.startswith("whsec_") for s in secrets)
    assert webhook_secret(b"one", "sub-a", 1) == webhook_secret(b"one", "sub-a", 1)
