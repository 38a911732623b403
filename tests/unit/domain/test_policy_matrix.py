"""The whole decision matrix against a policy table written here, independently of the code.

source jurisdiction x destination jurisdiction x classification x personal data x purpose x
agreement state: 3 x 3 x 4 x 2 x 2 x 7 = 1,008 decisions, each compared with the table.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from domain.agreement import AgreementState, AgreementTerms
from domain.classification import Classification
from domain.dataset import DatasetDefinition, DatasetKind
from domain.policy import AgreementView, Caller, DecisionReason, decide
from domain.region import RegionRegistry
from domain.whitelist import WhitelistRule, WhitelistView

NOW = datetime(2026, 6, 1, tzinfo=UTC)
REGIONS = RegionRegistry.default()
# Owner region of the data per source jurisdiction, and the consumer's region per destination.
# Within CN the consumer is another city; HK and MO have one region each, so there the
# consumer is in the owner region itself.
OWNER = {"CN": "gd-shenzhen", "HK": "hk", "MO": "mo"}
CONSUMER = {"CN": "gd-guangzhou", "HK": "hk", "MO": "mo"}
WHITELISTED, OTHER_PURPOSE = "traffic-management", "marketing"

# The policy table. Crossings the whitelist allows: highest classification, personal data.
CROSSINGS: dict[tuple[str, str], tuple[Classification, bool]] = {
    ("CN", "HK"): (Classification.SENSITIVE, False),
    ("HK", "CN"): (Classification.INTERNAL, True),
    ("CN", "MO"): (Classification.PUBLIC, False),
    ("MO", "HK"): (Classification.SENSITIVE, True),
}
# Agreement states: recorded state, and whether it still runs at NOW (False: expired).
STATES: dict[str, tuple[AgreementState, bool]] = {
    "proposed": (AgreementState.PROPOSED, True),
    "approved": (AgreementState.APPROVED, True),
    "accepted": (AgreementState.ACCEPTED, True),
    "active": (AgreementState.ACTIVE, True),
    "suspended": (AgreementState.SUSPENDED, True),
    "revoked": (AgreementState.REVOKED, True),
    "expired": (AgreementState.ACTIVE, False),
}
# Expected outcome: (allowed, reason, the graded field `value` visible).
Expected = tuple[bool, DecisionReason, bool]


def expected(
    source: str, destination: str, level: Classification, personal: bool, purpose: str, state: str
) -> Expected:
    if CONSUMER[destination] == OWNER[source]:
        # a partner of the owner region: everything up to its clearance (restricted here)
        return (True, DecisionReason.OWNER_REGION, True)
    if state == "expired":
        return (False, DecisionReason.AGREEMENT_EXPIRED, False)
    if state != "active":
        return (False, DecisionReason.AGREEMENT_NOT_ACTIVE, False)
    if source == destination:  # another city of the same jurisdiction: no whitelist needed
        return (True, DecisionReason.AGREEMENT, True)
    crossing = CROSSINGS.get((source, destination))
    if crossing is None or purpose != WHITELISTED:
        return (False, DecisionReason.NO_WHITELIST_RULE, False)
    highest, personal_ok = crossing
    visible = (
        level <= highest and level < Classification.RESTRICTED and (personal_ok or not personal)
    )
    return (True, DecisionReason.AGREEMENT, visible)


def _dataset(source: str, level: Classification, personal: bool) -> DatasetDefinition:
    return DatasetDefinition.from_dict(
        {
            "id": "gba.traffic.matrix",
            "kind": "traffic",
            "owner_region": OWNER[source],
            "title": "Matrix",
            "time_field": "at",
            "key_fields": ["link", "at"],
            "fields": [
                {"name": "link", "type": "string"},
                {"name": "at", "type": "timestamp"},
                {
                    "name": "value",
                    "type": "string",
                    "classification": level.label,
                    "personal": personal,
                },
            ],
        }
    )


def _whitelist() -> WhitelistView:
    rules = tuple(
        WhitelistRule(
            rule_id=f"{source}-{destination}".lower(),
            source_jurisdiction=source,
            destination_jurisdiction=destination,
            dataset_kind=DatasetKind.TRAFFIC,
            max_classification=highest,
            purposes=frozenset({WHITELISTED}),
            personal_data=personal_ok,
            legal_basis="GBA-SC-2026-0001",
            valid_from=NOW - timedelta(days=365),
        )
        for (source, destination), (highest, personal_ok) in CROSSINGS.items()
    )
    return WhitelistView(version=7, rules=rules)


CASES = list(
    itertools.product(
        ("CN", "HK", "MO"),
        ("CN", "HK", "MO"),
        list(Classification),
        (False, True),
        (WHITELISTED, OTHER_PURPOSE),
        list(STATES),
    )
)


def test_the_matrix_has_every_combination() -> None:
    assert len(CASES) == 3 * 3 * 4 * 2 * 2 * 7


@pytest.mark.parametrize(("source", "destination", "level", "personal", "purpose", "state"), CASES)
def test_decision_matches_the_policy_table(
    source: str,
    destination: str,
    level: Classification,
    personal: bool,
    purpose: str,
    state: str,
) -> None:
    dataset = _dataset(source, level, personal)
    recorded, running = STATES[state]
    terms = AgreementTerms(
        agreement_id="a-1",
        provider_region=OWNER[source],
        consumer_partner="partner-1",
        datasets=frozenset({dataset.id}),
        purpose=purpose,
        valid_from=NOW - timedelta(days=30),
        valid_until=NOW + timedelta(days=30) if running else NOW - timedelta(days=1),
    )
    caller = Caller("partner-1", CONSUMER[destination], Classification.RESTRICTED)

    decision = decide(
        caller, dataset, [AgreementView(terms, recorded)], _whitelist(), REGIONS, NOW, purpose
    )

    allowed, reason, visible = expected(source, destination, level, personal, purpose, state)
    assert (decision.allowed, decision.reason) == (allowed, reason), decision.message
    assert ("value" in decision.columns) is visible
    assert decision.whitelist_version == 7
    if allowed:
        assert {"link", "at"} <= set(decision.columns)
    else:
        assert decision.columns == ()
