"""Whatever the datasets, agreements, whitelist and caller: never more than the grant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.agreement import AgreementState, AgreementTerms
from domain.classification import Classification
from domain.dataset import DatasetDefinition, DatasetKind
from domain.policy import AgreementView, Caller, DecisionReason, decide
from domain.region import RegionRegistry
from domain.whitelist import WhitelistRule, WhitelistView

NOW = datetime(2026, 6, 1, tzinfo=UTC)
REGIONS = RegionRegistry.default()
REGION_CODES = ["gd-shenzhen", "gd-guangzhou", "hk", "mo"]
PARTNERS = ["p-hk", "p-mo", "p-gz"]
PURPOSES = ["traffic-management", "statistics", "marketing"]
FIELD_NAMES = ["a", "b", "c", "d", "e"]
LEVELS = st.sampled_from(list(Classification))


@st.composite
def datasets(draw: st.DrawFn) -> DatasetDefinition:
    fields: list[dict[str, object]] = [{"name": "at", "type": "timestamp"}]
    for name in FIELD_NAMES:
        fields.append(
            {
                "name": name,
                "type": "string",
                "classification": draw(LEVELS).label,
                "personal": draw(st.booleans()),
            }
        )
    return DatasetDefinition.from_dict(
        {
            "id": "gba.traffic.prop",
            "kind": draw(st.sampled_from(["traffic", "economic"])),
            "owner_region": draw(st.sampled_from(REGION_CODES)),
            "title": "Property",
            "time_field": "at",
            "key_fields": ["at"],
            "fields": fields,
        }
    )


def _mostly(likely: object, *others: object) -> st.SearchStrategy[object]:
    """Mostly ``likely`` (once in each of its copies against one of each other value), so
    that generated agreements and rules often apply and the interesting branches are met."""
    return st.sampled_from([*[likely] * (3 * len(others) + 1), *others])


@st.composite
def agreements(draw: st.DrawFn, dataset: DatasetDefinition, caller: Caller) -> AgreementView:
    start = NOW + timedelta(days=draw(st.sampled_from([-30, -30, -30, 5])))
    covered = str(draw(_mostly(dataset.id, "other.dataset")))
    terms = AgreementTerms(
        agreement_id=f"a-{draw(st.integers(0, 99))}",
        provider_region=str(draw(_mostly(dataset.owner_region, *REGION_CODES))),
        consumer_partner=str(draw(_mostly(caller.partner_id, *PARTNERS))),
        datasets=frozenset({covered}),
        purpose=draw(st.sampled_from(PURPOSES)),
        valid_from=start,
        valid_until=draw(st.none() | st.just(start + timedelta(days=draw(st.integers(1, 90))))),
        fields=draw(
            st.none().map(lambda _: {})
            | st.sets(st.sampled_from(["at", *FIELD_NAMES])).map(
                lambda names: {covered: frozenset(names)}
            )
        ),
    )
    states = list(AgreementState)[:-1]  # expiry is read from the validity, never recorded
    return AgreementView(terms, cast(AgreementState, draw(_mostly(AgreementState.ACTIVE, *states))))


@st.composite
def rules(draw: st.DrawFn, wanted: tuple[str, str]) -> WhitelistRule:
    directions = [(s, d) for s in ("CN", "HK", "MO") for d in ("CN", "HK", "MO") if s != d]
    likely = wanted if wanted in directions else directions[0]
    direction: tuple[str, str] = draw(_mostly(likely, *directions))  # type: ignore[assignment]
    source, destination = direction
    by_kind = draw(st.booleans())
    start = NOW + timedelta(days=draw(st.sampled_from([-30, -30, -30, 5])))
    return WhitelistRule(
        rule_id=f"r-{draw(st.integers(0, 99))}",
        source_jurisdiction=source,
        destination_jurisdiction=destination,
        dataset_kind=draw(st.sampled_from(list(DatasetKind))) if by_kind else None,
        dataset_id=None if by_kind else draw(st.sampled_from(["gba.traffic.prop", "x.y"])),
        max_classification=draw(st.sampled_from(list(Classification)[:-1])),
        purposes=frozenset(draw(st.sets(st.sampled_from(PURPOSES), min_size=1, max_size=3))),
        personal_data=draw(st.booleans()),
        legal_basis="GBA-SC",
        valid_from=start,
        valid_until=draw(st.none() | st.just(start + timedelta(days=30))),
    )


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[Caller, DatasetDefinition, list[AgreementView], WhitelistView, str | None]:
    dataset = draw(datasets())
    caller = Caller(
        draw(st.sampled_from(PARTNERS)),
        draw(st.sampled_from([*REGION_CODES, *REGION_CODES, "nowhere"])),
        draw(LEVELS),
    )
    views = draw(
        st.lists(
            agreements(dataset, caller),
            min_size=1,
            max_size=3,
            unique_by=lambda v: v.terms.agreement_id,
        )
    )
    owner = REGIONS.get(dataset.owner_region).jurisdiction
    consumer = REGIONS.get(caller.region or "").jurisdiction if caller.region in REGIONS else "??"
    rule_list = draw(st.lists(rules((owner, consumer)), max_size=5, unique_by=lambda r: r.rule_id))
    whitelist = WhitelistView(draw(st.integers(1, 50)), tuple(rule_list))
    return caller, dataset, views, whitelist, draw(_mostly(None, *PURPOSES))  # type: ignore[return-value]


@settings(max_examples=1500, deadline=None)
@given(scenarios())
def test_a_decision_never_grants_more_than_agreement_whitelist_and_clearance_allow(
    scenario: tuple[Caller, DatasetDefinition, list[AgreementView], WhitelistView, str | None],
) -> None:
    caller, dataset, views, whitelist, purpose = scenario
    decision = decide(caller, dataset, views, whitelist, REGIONS, NOW, purpose)

    assert set(decision.columns).isdisjoint(decision.withheld)
    assert decision.whitelist_version == whitelist.version
    if not decision.allowed:
        assert decision.columns == ()
        return
    assert set(decision.columns) | set(decision.withheld) == set(dataset.field_names)
    specs = [dataset.field(name) for name in decision.columns]
    assert all(spec.classification <= caller.clearance for spec in specs)
    if decision.reason is DecisionReason.OWNER_REGION:
        assert caller.region == dataset.owner_region
        return
    assert decision.reason is DecisionReason.AGREEMENT
    cited = [v for v in views if v.terms.agreement_id == decision.agreement_id]
    assert any(
        v.state is AgreementState.ACTIVE
        and v.terms.valid_at(NOW)
        and v.terms.consumer_partner == caller.partner_id
        and v.terms.provider_region == dataset.owner_region
        and dataset.id in v.terms.datasets
        and (purpose is None or v.terms.purpose == purpose)
        and set(decision.columns) <= v.terms.permitted_fields(dataset)
        for v in cited
    )
    source = REGIONS.get(dataset.owner_region).jurisdiction
    destination = REGIONS.get(caller.region or "").jurisdiction
    if source == destination:
        assert decision.whitelist_rule is None
        return
    rule = next(r for r in whitelist.rules if r.rule_id == decision.whitelist_rule)
    assert any(rule.allows(source, destination, dataset, v.terms.purpose, NOW) for v in cited)
    assert all(spec.classification <= rule.max_classification for spec in specs)
    assert all(spec.classification < Classification.RESTRICTED for spec in specs)
    assert rule.personal_data or not any(spec.personal for spec in specs)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_without_an_agreement_only_the_owner_region_reads(
    scenario: tuple[Caller, DatasetDefinition, list[AgreementView], WhitelistView, str | None],
) -> None:
    caller, dataset, _, whitelist, purpose = scenario
    decision = decide(caller, dataset, [], whitelist, REGIONS, NOW, purpose)
    if caller.region != dataset.owner_region:
        assert not decision.allowed
