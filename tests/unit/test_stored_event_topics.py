"""Stored event topics are part of the data format: they may not change by accident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from eventsourcing.domain import DomainEvent
from eventsourcing.utils import get_topic, resolve_topic

from domain.access import AccessRecord
from domain.agreement import AgreementTerms, SharingAgreement
from domain.catalog import CatalogIndex, Dataset
from domain.dataset import DatasetDefinition
from domain.delivery import DeliveryRecord
from domain.governance_index import GovernanceIndex
from domain.ingest import ChainHead, IngestChain, chain_id_for, next_batch
from domain.partner import Partner
from domain.provenance import Provenance
from domain.snapshot import SnapshotLog
from domain.subscription import Subscription, SubscriptionIndex
from domain.tree_head_log import TreeHeadLog
from domain.whitelist import Whitelist, WhitelistRule
from storage.catalog import Catalog
from storage.governance import Governance
from storage.ingestion import IngestLedger

FIXTURES = Path(__file__).parents[1] / "fixtures"
FROZEN = FIXTURES / "stored-event-topics.txt"


def nested_event(owner: type, name: str) -> type[DomainEvent]:
    """An event class the eventsourcing library declared on an aggregate from its decorators."""
    event = vars(owner)[name]
    assert isinstance(event, type)
    assert issubclass(event, DomainEvent)
    return event


STORED_EVENT_CLASSES: list[type[DomainEvent]] = [
    IngestChain.BatchRecorded,
    nested_event(Dataset, "Registered"),
    nested_event(Dataset, "Revised"),
    nested_event(CatalogIndex, "Created"),
    nested_event(CatalogIndex, "DatasetAdded"),
    SnapshotLog.Published,
    nested_event(AccessRecord, "Recorded"),
    *(
        nested_event(SharingAgreement, name)
        for name in (
            "Proposed",
            "Approved",
            "Accepted",
            "Activated",
            "Suspended",
            "Resumed",
            "Revoked",
        )
    ),
    *(nested_event(Whitelist, name) for name in ("Created", "RuleAdded", "RuleWithdrawn")),
    *(
        nested_event(Partner, name)
        for name in ("Registered", "KeyIssued", "KeyRetiring", "KeyRevoked")
    ),
    *(
        nested_event(GovernanceIndex, name)
        for name in ("Created", "PartnerAdded", "KeyAdded", "AgreementAdded")
    ),
    *(
        nested_event(Subscription, name)
        for name in (
            "Created",
            "Paused",
            "Resumed",
            "Cancelled",
            "DeadLettered",
            "Redriven",
            "SecretRotated",
        )
    ),
    *(nested_event(SubscriptionIndex, name) for name in ("Created", "SubscriptionAdded")),
    nested_event(DeliveryRecord, "Recorded"),
    TreeHeadLog.Recorded,
]
WHY = (
    "Stored events name their class by its topic, so data already stored depends on these "
    "names. A renamed or moved event class needs class_version + upcasters, or "
    "eventsourcing.utils.register_topic(old_topic, new_class), before "
    f"{FROZEN.relative_to(FIXTURES.parents[1])} may change."
)


def frozen_topics() -> list[str]:
    lines = FROZEN.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_stored_event_topics_match_the_frozen_list() -> None:
    topics = sorted(get_topic(cls) for cls in STORED_EVENT_CLASSES)

    assert topics == frozen_topics(), WHY


def test_every_frozen_topic_still_resolves_to_a_stored_event_class() -> None:
    for topic in frozen_topics():
        resolved = resolve_topic(topic)
        assert isinstance(resolved, type), f"{topic} does not name a class. {WHY}"
        assert issubclass(resolved, DomainEvent), f"{topic} is not an event class. {WHY}"


def test_the_applications_store_only_frozen_topics(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    data = yaml.safe_load((FIXTURES / "datasets" / "sensor-readings.yaml").read_text("utf-8"))
    catalog, ledger = Catalog(url), IngestLedger(url)
    try:
        definition = DatasetDefinition.from_dict(data)
        catalog.register(definition)
        catalog.register(DatasetDefinition.from_dict({**data, "title": "Sensor readings"}))
        batch = next_batch(
            ChainHead.genesis(chain_id_for(definition.id, 0)),
            dataset_id=definition.id,
            partition=0,
            source=f"{definition.ingest_topic}:0@0",
            provenance=Provenance(
                source_uri="file:///feeds/readings.jsonl",
                received_at=datetime(2025, 6, 1, tzinfo=UTC),
                payload_sha256="0" * 64,
                connector="tabular",
                connector_version="1.0.0",
                region="gd-shenzhen",
                wire_schema_version=1,
            ),
            accepted=[],
            rejected=[],
        )
        ledger.record(batch, topic=definition.ingest_topic, partition=0, offset=0, record_ids=[])
        stored = {n.topic for n in ledger.recorder.select_notifications(start=None, limit=100)}
    finally:
        catalog.close()
        ledger.close()

    assert stored <= set(frozen_topics()), WHY


def test_governance_stores_only_frozen_topics(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    data = yaml.safe_load((FIXTURES / "datasets" / "sensor-readings.yaml").read_text("utf-8"))
    dataset = DatasetDefinition.from_dict(data)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    governance = Governance(url)
    try:
        partner = governance.register_partner("hk", "Transport Department")
        key = governance.issue_key(partner.partner_id, now)
        governance.rotate_key(partner.partner_id, key.key_id, timedelta(hours=1), now)
        governance.revoke_key(partner.partner_id, key.key_id, "rotated out early")
        governance.add_rule(
            WhitelistRule.from_dict(
                {
                    "rule_id": "cn-hk",
                    "source_jurisdiction": "CN",
                    "destination_jurisdiction": "HK",
                    "dataset_kind": "traffic",
                    "max_classification": "internal",
                    "purposes": ["traffic-management"],
                    "legal_basis": "GBA-SC-1",
                    "valid_from": "2026-01-01T00:00:00+00:00",
                }
            )
        )
        terms = AgreementTerms(
            agreement_id="a-1",
            provider_region=dataset.owner_region,
            consumer_partner=partner.partner_id,
            datasets=frozenset({dataset.id}),
            purpose="traffic-management",
            valid_from=now - timedelta(days=1),
        )
        lookup = {dataset.id: dataset}.__getitem__
        governance.propose(terms, "provider", lookup)
        governance.approve("a-1", "provider")
        governance.accept("a-1", "consumer")
        governance.activate("a-1", "admin", lookup, now)
        governance.suspend("a-1", "admin", "review")
        governance.resume("a-1", "admin", lookup, now)
        governance.revoke("a-1", "provider", "ended")
        governance.withdraw_rule("cn-hk", "lapsed")
        stored = {n.topic for n in governance.recorder.select_notifications(start=None, limit=100)}
    finally:
        governance.close()

    governance_topics = {
        t
        for t in frozen_topics()
        if not t.startswith(
            (
                "domain.access",
                "domain.catalog",
                "domain.delivery",
                "domain.ingest",
                "domain.snapshot",
                "domain.subscription",
                "domain.tree_head_log",
            )
        )
    }
    assert stored == governance_topics, WHY
