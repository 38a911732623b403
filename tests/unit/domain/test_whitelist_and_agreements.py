"""Whitelist rules and sharing agreements: their guards and their lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.agreement import AgreementState, AgreementTerms, SharingAgreement
from domain.dataset import DatasetDefinition
from domain.errors import (
    AgreementStateError,
    AgreementTermsError,
    TransformationError,
    UnknownClassificationError,
    WhitelistRuleError,
    WhitelistRuleNotFoundError,
)
from domain.whitelist import Whitelist, WhitelistRule

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DATASET = DatasetDefinition.from_dict(
    {
        "id": "gd-shenzhen.traffic.road-speed",
        "kind": "traffic",
        "owner_region": "gd-shenzhen",
        "title": "Road speed",
        "time_field": "at",
        "key_fields": ["link", "at"],
        "geometry": {"lat": "lat", "lon": "lon"},
        "fields": [
            {"name": "link", "type": "string"},
            {"name": "at", "type": "timestamp"},
            {"name": "lat", "type": "float64"},
            {"name": "lon", "type": "float64"},
            {"name": "speed", "type": "float64"},
            {"name": "plate", "type": "string", "classification": "sensitive", "personal": True},
        ],
    }
)


def _rule(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "rule_id": "cn-hk-traffic",
        "source_jurisdiction": "CN",
        "destination_jurisdiction": "HK",
        "dataset_kind": "traffic",
        "max_classification": "internal",
        "purposes": ["traffic-management"],
        "legal_basis": "GBA-SC-2026-0001",
        "valid_from": "2026-01-01T00:00:00+08:00",
    }
    raw.update(changes)
    return raw


def _terms(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "agreement_id": "sz-td-2026",
        "provider_region": "gd-shenzhen",
        "consumer_partner": "hk-transport-department",
        "datasets": [DATASET.id],
        "purpose": "traffic-management",
        "valid_from": "2026-01-01T00:00:00+00:00",
        "valid_until": "2027-01-01T00:00:00+00:00",
        "fields": {DATASET.id: ["link", "at", "speed", "lat", "lon"]},
        "row_scope": {"regions": ["gd-shenzhen"], "bbox": [113.7, 22.4, 114.4, 22.9]},
        "transformations": {
            DATASET.id: [{"kind": "coarsen_location", "grid_degrees": 0.01}],
        },
    }
    raw.update(changes)
    return raw


def test_a_rule_reads_back_from_its_plain_form() -> None:
    rule = WhitelistRule.from_dict(_rule())
    assert WhitelistRule.from_dict(rule.as_dict()) == rule
    assert rule.allows("CN", "HK", DATASET, "traffic-management", NOW)
    assert not rule.allows("HK", "CN", DATASET, "traffic-management", NOW)
    assert not rule.allows("CN", "HK", DATASET, "marketing", NOW)
    assert not rule.allows(
        "CN", "HK", DATASET, "traffic-management", datetime(2025, 1, 1, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"max_classification": "restricted"}, "restricted data never leaves"),
        ({"destination_jurisdiction": "CN"}, "within one jurisdiction"),
        ({"dataset_id": "x.y"}, "exactly one of dataset_id or dataset_kind"),
        ({"dataset_kind": None}, "exactly one of dataset_id or dataset_kind"),
        ({"purposes": []}, "at least one purpose"),
        ({"purposes": "traffic-management"}, "a list of purposes"),
        ({"legal_basis": " "}, "legal basis"),
        ({"valid_from": "2026-01-01T00:00:00"}, "with a zone"),
        ({"valid_until": "2025-01-01T00:00:00+00:00"}, "after valid_from"),
        ({"source_jurisdiction": "cn"}, "two-letter jurisdiction"),
        ({"rule_id": "has space"}, "rule id"),
        ({"max_classification": "secret"}, "unknown classification"),
    ],
)
def test_a_malformed_rule_is_refused_by_name(changes: dict[str, Any], complaint: str) -> None:
    with pytest.raises((WhitelistRuleError, UnknownClassificationError), match=complaint):
        WhitelistRule.from_dict(_rule(**changes))


def test_every_whitelist_change_raises_its_version() -> None:
    whitelist = Whitelist()
    first = whitelist.view().version
    whitelist.add_rule(WhitelistRule.from_dict(_rule()))
    assert whitelist.view().version == first + 1
    assert [r.rule_id for r in whitelist.view().rules] == ["cn-hk-traffic"]
    whitelist.withdraw_rule("cn-hk-traffic", "contract filing lapsed")
    assert whitelist.view().version == first + 2
    assert whitelist.view().rules == ()
    with pytest.raises(WhitelistRuleNotFoundError):
        whitelist.withdraw_rule("cn-hk-traffic", "again")
    whitelist.add_rule(WhitelistRule.from_dict(_rule()))
    with pytest.raises(WhitelistRuleError, match="exists already"):
        whitelist.add_rule(WhitelistRule.from_dict(_rule()))


def test_agreement_terms_read_back_and_fit_the_dataset() -> None:
    terms = AgreementTerms.from_dict(_terms())
    assert AgreementTerms.from_dict(terms.as_dict()) == terms
    terms.check_against(DATASET)
    assert terms.permitted_fields(DATASET) == {"link", "at", "speed", "lat", "lon"}


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"datasets": []}, "at least one dataset"),
        ({"purpose": ""}, "purpose is required"),
        ({"valid_until": "2025-01-01T00:00:00+00:00"}, "after valid_from"),
        ({"fields": {"other.dataset": ["a"]}}, "is not one of its datasets"),
        ({"row_scope": {"bbox": [114.4, 22.4, 113.7, 22.9]}}, "min_lon <= max_lon"),
        ({"row_scope": {"bbox": [1, 2, 3]}}, "four numbers"),
        ({"agreement_id": ""}, "agreement id"),
        ({"valid_from": "yesterday"}, "ISO 8601"),
    ],
)
def test_malformed_terms_are_refused_by_name(changes: dict[str, Any], complaint: str) -> None:
    with pytest.raises(AgreementTermsError, match=complaint):
        AgreementTerms.from_dict(_terms(**changes))


@pytest.mark.parametrize(
    ("transformation", "complaint"),
    [
        ({"kind": "mask", "field": "speed"}, "not a string"),
        ({"kind": "mask", "field": "nope"}, "names no field"),
        ({"kind": "coarsen_time", "field": "at", "unit": "week"}, "unit is one of"),
        ({"kind": "coarsen_location"}, "exactly one of grid_degrees, h3_resolution"),
        ({"kind": "coarsen_location", "h3_resolution": 16}, "0 to 15"),
        ({"kind": "aggregate", "window": "hour", "min_count": 0}, "at least 1"),
        ({"kind": "aggregate", "window": "hour", "min_count": 5, "group_by": ["x"]}, "group_by"),
        ({"kind": "shuffle", "field": "link"}, "unknown transformation"),
    ],
)
def test_a_transformation_that_does_not_fit_is_refused(
    transformation: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(TransformationError, match=complaint):
        AgreementTerms.from_dict(
            _terms(transformations={DATASET.id: [transformation]})
        ).check_against(DATASET)


def test_unknown_permitted_fields_are_named() -> None:
    terms = AgreementTerms.from_dict(_terms(fields={DATASET.id: ["link", "colour"]}))
    with pytest.raises(AgreementTermsError, match="colour"):
        terms.check_against(DATASET)


def _state(agreement: SharingAgreement) -> AgreementState:
    return agreement.state  # a call, so each check reads the state afresh


def _agreement() -> SharingAgreement:
    return SharingAgreement(
        agreement_id="sz-td-2026", terms=_terms(), proposed_by="gd-shenzhen transport bureau"
    )


def test_an_agreement_runs_its_lifecycle_in_order() -> None:
    agreement = _agreement()
    assert _state(agreement) is AgreementState.PROPOSED
    with pytest.raises(AgreementStateError, match="cannot activate it"):
        agreement.activate("admin", NOW, ["cn-hk-traffic"])
    agreement.approve("gd-shenzhen")
    with pytest.raises(AgreementStateError, match="cannot approve it"):
        agreement.approve("gd-shenzhen")
    agreement.accept("hk-transport-department")
    agreement.activate("admin", NOW, ["cn-hk-traffic"])
    assert _state(agreement) is AgreementState.ACTIVE
    assert agreement.whitelist_rules == ["cn-hk-traffic"]
    agreement.suspend("admin", "incident review")
    assert _state(agreement) is AgreementState.SUSPENDED
    agreement.resume("admin", NOW, ["cn-hk-traffic"])
    agreement.revoke("gd-shenzhen", "contract ended early")
    assert _state(agreement) is AgreementState.REVOKED
    with pytest.raises(AgreementStateError, match="cannot resume it"):
        agreement.resume("admin", NOW, [])
    assert [state for state, _ in agreement.history] == [
        "proposed", "approved", "accepted", "active", "suspended", "active", "revoked",
    ]  # fmt: skip


def test_an_agreement_past_its_validity_is_expired_and_cannot_be_activated() -> None:
    agreement = _agreement()
    agreement.approve("p")
    agreement.accept("c")
    later = datetime(2027, 6, 1, tzinfo=UTC)
    with pytest.raises(AgreementStateError, match="not valid at"):
        agreement.activate("admin", later, [])
    agreement.activate("admin", NOW, [])
    assert agreement.state_at(NOW) is AgreementState.ACTIVE
    assert agreement.state_at(later) is AgreementState.EXPIRED
    assert agreement.state_at(NOW + timedelta(days=1)) is AgreementState.ACTIVE


def test_suspending_or_revoking_needs_a_reason() -> None:
    agreement = _agreement()
    with pytest.raises(AgreementStateError, match="say why"):
        agreement.revoke("p", "  ")


def test_an_agreement_replays_from_its_events() -> None:
    agreement = _agreement()
    agreement.approve("p")
    agreement.accept("c")
    agreement.activate("admin", NOW, ["cn-hk-traffic"])
    events = agreement.collect_events()
    replayed: SharingAgreement | None = None
    for domain_event in events:
        replayed = domain_event.mutate(replayed)
    assert replayed is not None
    assert _state(replayed) is AgreementState.ACTIVE
    assert replayed.terms == agreement.terms
    assert [type(e).__name__ for e in events] == ["Proposed", "Approved", "Accepted", "Activated"]
