"""Partners, keys, the whitelist and agreements, stored and decided on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.agreement import AgreementState, AgreementTerms
from domain.classification import Classification
from domain.dataset import DatasetDefinition
from domain.errors import (
    AgreementNotFoundError,
    AgreementStateError,
    AgreementTermsError,
    PartnerError,
    PartnerNotFoundError,
)
from domain.partner import Partner
from domain.policy import DecisionReason
from domain.whitelist import WhitelistRule
from storage.governance import Governance

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
            {"name": "camera", "type": "string", "classification": "internal"},
            {"name": "plate", "type": "string", "classification": "sensitive", "personal": True},
        ],
    }
)
DATASETS = {ROAD_SPEED.id: ROAD_SPEED}
CN_HK = WhitelistRule(
    rule_id="cn-hk-traffic",
    source_jurisdiction="CN",
    destination_jurisdiction="HK",
    dataset_kind=ROAD_SPEED.kind,
    max_classification=Classification.INTERNAL,
    purposes=frozenset({"traffic-management"}),
    legal_basis="GBA-SC-2026-0001",
    valid_from=NOW - timedelta(days=100),
)


@pytest.fixture(params=["sqlite", "postgresql"])
def governance(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Governance]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    app = Governance(url)
    try:
        yield app
    finally:
        app.close()


def _terms(
    agreement_id: str = "sz-hk-2026", consumer: str = "hk-transport-department"
) -> AgreementTerms:
    return AgreementTerms(
        agreement_id=agreement_id,
        provider_region="gd-shenzhen",
        consumer_partner=consumer,
        datasets=frozenset({ROAD_SPEED.id}),
        purpose="traffic-management",
        valid_from=NOW - timedelta(days=10),
        valid_until=NOW + timedelta(days=365),
    )


def _active_agreement(governance: Governance) -> None:
    governance.register_partner("hk", "Transport Department", Classification.SENSITIVE)
    governance.add_rule(CN_HK)
    governance.propose(_terms(), "gd-shenzhen", DATASETS.__getitem__)
    governance.approve("sz-hk-2026", "gd-shenzhen")
    governance.accept("sz-hk-2026", "hk-transport-department")
    governance.activate("sz-hk-2026", "admin", DATASETS.__getitem__, NOW)


def test_a_key_is_shown_once_and_authenticates_its_partner_only(governance: Governance) -> None:
    partner = governance.register_partner("hk", "Transport Department", Classification.INTERNAL)
    assert partner.partner_id == "hk-transport-department"
    issued = governance.issue_key(partner.partner_id, NOW)

    caller = governance.authenticate(issued.key, NOW)

    assert caller is not None
    assert (caller.partner_id, caller.region, caller.clearance) == (
        "hk-transport-department", "hk", Classification.INTERNAL,
    )  # fmt: skip
    assert governance.authenticate(issued.key[:-1] + "x", NOW) is None
    assert governance.authenticate("blk_nope_secret", NOW) is None
    assert governance.authenticate("Bearer anything", NOW) is None
    assert governance.authenticate(issued.key, NOW - timedelta(seconds=1)) is None
    with pytest.raises(PartnerError, match="exists already"):
        governance.register_partner("hk", "Transport Department")


def test_rotation_keeps_the_old_key_for_the_overlap_then_ends_it(governance: Governance) -> None:
    partner = governance.register_partner("mo", "DSAT")
    old = governance.issue_key(partner.partner_id, NOW)

    new = governance.rotate_key(partner.partner_id, old.key_id, timedelta(hours=1), NOW)

    during = NOW + timedelta(minutes=59)
    after = NOW + timedelta(minutes=61)
    assert governance.authenticate(old.key, during) is not None
    assert governance.authenticate(new.key, during) is not None
    assert governance.authenticate(old.key, after) is None
    assert governance.authenticate(new.key, after) is not None
    governance.revoke_key(partner.partner_id, new.key_id, "leaked in a log")
    assert governance.authenticate(new.key, after) is None
    assert governance.partner(partner.partner_id, after).active_keys == ()


def test_an_active_agreement_grants_what_the_whitelist_allows_and_no_more(
    governance: Governance,
) -> None:
    _active_agreement(governance)
    caller = governance.authenticate(governance.issue_key("hk-transport-department", NOW).key, NOW)
    assert caller is not None

    decision = governance.decide(caller, ROAD_SPEED, NOW)

    assert decision.allowed
    assert decision.agreement_id == "sz-hk-2026"
    assert decision.whitelist_rule == "cn-hk-traffic"
    assert decision.columns == ("link", "at", "speed", "camera")
    assert "plate" in decision.withheld
    info = governance.agreement("sz-hk-2026")
    assert info.state is AgreementState.ACTIVE
    assert info.whitelist_rules == ("cn-hk-traffic",)


def test_withdrawing_the_rule_cuts_access_at_once_and_the_dry_run_said_so(
    governance: Governance,
) -> None:
    _active_agreement(governance)
    caller = governance.authenticate(governance.issue_key("hk-transport-department", NOW).key, NOW)
    assert caller is not None

    cut = governance.dry_run_withdraw("cn-hk-traffic", DATASETS.__getitem__, NOW)
    assert [(c.agreement_id, c.dataset_id) for c in cut] == [("sz-hk-2026", ROAD_SPEED.id)]
    assert governance.decide(caller, ROAD_SPEED, NOW).allowed  # a dry run changes nothing
    version = governance.withdraw_rule("cn-hk-traffic", "filing lapsed")

    decision = governance.decide(caller, ROAD_SPEED, NOW)
    assert not decision.allowed
    assert decision.reason is DecisionReason.NO_WHITELIST_RULE
    assert decision.whitelist_version == version
    governance.suspend("sz-hk-2026", "admin", "review")
    with pytest.raises(AgreementStateError, match="no whitelist rule"):
        governance.resume("sz-hk-2026", "admin", DATASETS.__getitem__, NOW)


def test_suspending_or_revoking_denies_the_next_decision(governance: Governance) -> None:
    _active_agreement(governance)
    caller = governance.authenticate(governance.issue_key("hk-transport-department", NOW).key, NOW)
    assert caller is not None
    governance.suspend("sz-hk-2026", "admin", "incident review")
    assert governance.decide(caller, ROAD_SPEED, NOW).reason is DecisionReason.AGREEMENT_NOT_ACTIVE
    governance.resume("sz-hk-2026", "admin", DATASETS.__getitem__, NOW)
    assert governance.decide(caller, ROAD_SPEED, NOW).allowed
    governance.revoke("sz-hk-2026", "gd-shenzhen", "ended")
    assert not governance.decide(caller, ROAD_SPEED, NOW).allowed


def test_activation_without_a_whitelist_rule_is_refused(governance: Governance) -> None:
    governance.register_partner("hk", "Transport Department")
    governance.propose(_terms(), "gd-shenzhen", DATASETS.__getitem__)
    governance.approve("sz-hk-2026", "gd-shenzhen")
    governance.accept("sz-hk-2026", "hk-transport-department")
    with pytest.raises(AgreementStateError, match="no whitelist rule"):
        governance.activate("sz-hk-2026", "admin", DATASETS.__getitem__, NOW)
    assert governance.agreement("sz-hk-2026").state is AgreementState.ACCEPTED


def test_a_proposal_must_fit_its_datasets_and_partners(governance: Governance) -> None:
    with pytest.raises(PartnerNotFoundError):
        governance.propose(_terms(), "gd-shenzhen", DATASETS.__getitem__)
    governance.register_partner("hk", "Transport Department")
    with pytest.raises(AgreementTermsError, match="belongs to gd-shenzhen, not to the provider hk"):
        governance.propose(replace(_terms(), provider_region="hk"), "hk", DATASETS.__getitem__)
    governance.propose(_terms(), "gd-shenzhen", DATASETS.__getitem__)
    with pytest.raises(AgreementTermsError, match="exists already"):
        governance.propose(_terms(), "gd-shenzhen", DATASETS.__getitem__)
    with pytest.raises(AgreementNotFoundError):
        governance.approve("nope", "x")
    assert [a.terms.agreement_id for a in governance.agreements("hk-transport-department")] == [
        "sz-hk-2026"
    ]


def test_a_write_that_loses_a_race_is_made_again_on_the_winners_state(
    governance: Governance,
) -> None:
    partner = governance.register_partner("hk", "Transport Department").partner_id
    first = governance.issue_key(partner)
    other = Governance(governance.event_store_url)
    read_partner = governance._partner
    raced: list[str] = []

    def read_then_lose_the_race(partner_id: str) -> Partner:
        # Another request saves the partner and the index between this read and its save.
        read = read_partner(partner_id)
        if not raced:
            raced.append(other.issue_key(partner_id).key_id)
        return read

    try:
        governance._partner = read_then_lose_the_race  # type: ignore[method-assign]
        governance.revoke_key(partner, first.key_id, "leaked")
    finally:
        other.close()

    active = governance.partner(partner).active_keys
    assert raced
    assert raced[0] in active
    assert first.key_id not in active
