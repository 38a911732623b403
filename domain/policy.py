"""The one policy function: may this caller see this dataset, and what of it?

Both enforcement points (the query API and the delivery relay) ask it; it is pure, so a
decision can be recomputed and explained afterwards from the agreement and whitelist versions
it cites. Default deny.

The order of checks, each ending in a denial with its reason:
1. the administrator sees everything; a partner of the dataset's owner region sees it as the
   owner does, up to the partner's clearance;
2. otherwise the caller needs an agreement with the owner region covering the dataset, active
   at the time asked and valid then, for the purpose asked (when one is asked);
3. across jurisdictions a whitelist rule must allow the crossing for the agreement's purpose
   now; it caps the classification and says whether personal data may cross, and
   ``restricted`` fields never cross;
4. what is left of the agreement's permitted fields after the caps must not be empty.
With several agreements, the one granting the most fields wins, then the lowest agreement id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from domain.agreement import AgreementState, AgreementTerms, RowScope
from domain.classification import Classification
from domain.dataset import DatasetDefinition
from domain.region import RegionRegistry
from domain.transformation import Transformation
from domain.whitelist import WhitelistRule, WhitelistView


class DecisionReason(StrEnum):
    ADMIN = "admin"
    OWNER_REGION = "owner-region"
    AGREEMENT = "agreement"
    UNKNOWN_CALLER_REGION = "unknown-caller-region"
    NO_AGREEMENT = "no-agreement"
    AGREEMENT_NOT_ACTIVE = "agreement-not-active"
    AGREEMENT_EXPIRED = "agreement-expired"
    AGREEMENT_NOT_YET_VALID = "agreement-not-yet-valid"
    PURPOSE_MISMATCH = "purpose-mismatch"
    NO_WHITELIST_RULE = "no-whitelist-rule"
    NOTHING_PERMITTED = "nothing-permitted"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: a partner (a government body in a region, with a clearance) or the admin."""

    partner_id: str | None
    region: str | None
    clearance: Classification = Classification.PUBLIC
    admin: bool = False

    @classmethod
    def administrator(cls) -> Caller:
        return cls(None, None, Classification.RESTRICTED, admin=True)


@dataclass(frozen=True, slots=True)
class AgreementView:
    """An agreement's terms and its recorded state (expiry is read from the terms)."""

    terms: AgreementTerms
    state: AgreementState


@dataclass(frozen=True)
class Decision:
    """Allow or deny, why, and, when allowed, exactly what may be seen and how."""

    allowed: bool
    reason: DecisionReason
    message: str
    dataset_id: str
    whitelist_version: int
    agreement_id: str | None = None
    whitelist_rule: str | None = None
    columns: tuple[str, ...] = ()
    withheld: Mapping[str, str] = field(default_factory=dict)
    row_scope: RowScope = field(default_factory=RowScope)
    transformations: tuple[Transformation, ...] = ()


def decide(
    caller: Caller,
    dataset: DatasetDefinition,
    agreements: Iterable[AgreementView],
    whitelist: WhitelistView,
    regions: RegionRegistry,
    at: datetime,
    purpose: str | None = None,
) -> Decision:
    """The decision for ``caller`` reading ``dataset`` at ``at`` (see the module docstring)."""
    version = whitelist.version
    if caller.admin:
        return Decision(
            True,
            DecisionReason.ADMIN,
            "the administrator",
            dataset.id,
            version,
            columns=dataset.field_names,
        )
    if caller.region is None or caller.region not in regions:
        return _deny(
            DecisionReason.UNKNOWN_CALLER_REGION, "the caller has no known region", dataset, version
        )
    if caller.region == dataset.owner_region:
        columns, withheld = _capped(dataset, frozenset(dataset.field_names), caller.clearance, True)
        if not columns:
            return _deny(
                DecisionReason.NOTHING_PERMITTED,
                "every field is above the caller's clearance",
                dataset,
                version,
                withheld=withheld,
            )
        return Decision(
            True,
            DecisionReason.OWNER_REGION,
            f"a partner of the owner region {caller.region}",
            dataset.id,
            version,
            columns=columns,
            withheld=withheld,
        )
    candidates = sorted(
        (
            view
            for view in agreements
            if view.terms.consumer_partner == caller.partner_id
            and view.terms.provider_region == dataset.owner_region
            and dataset.id in view.terms.datasets
        ),
        key=lambda view: view.terms.agreement_id,
    )
    if not candidates:
        return _deny(
            DecisionReason.NO_AGREEMENT,
            f"no agreement with {dataset.owner_region} covers {dataset.id}",
            dataset,
            version,
        )
    decisions = [
        _under_agreement(caller, dataset, view, whitelist, regions, at, purpose)
        for view in candidates
    ]
    allowed = [d for d in decisions if d.allowed]
    if allowed:
        return max(allowed, key=lambda d: len(d.columns))  # max keeps the first of equals
    return decisions[0]


def _under_agreement(
    caller: Caller,
    dataset: DatasetDefinition,
    view: AgreementView,
    whitelist: WhitelistView,
    regions: RegionRegistry,
    at: datetime,
    purpose: str | None,
) -> Decision:
    terms, version = view.terms, whitelist.version
    cite = terms.agreement_id
    if view.state is not AgreementState.ACTIVE:
        return _deny(
            DecisionReason.AGREEMENT_NOT_ACTIVE,
            f"agreement {cite} is {view.state.value}",
            dataset,
            version,
            cite,
        )
    if terms.valid_until is not None and at >= terms.valid_until:
        return _deny(
            DecisionReason.AGREEMENT_EXPIRED,
            f"agreement {cite} expired at {terms.valid_until.isoformat()}",
            dataset,
            version,
            cite,
        )
    if at < terms.valid_from:
        return _deny(
            DecisionReason.AGREEMENT_NOT_YET_VALID,
            f"agreement {cite} is valid from {terms.valid_from.isoformat()}",
            dataset,
            version,
            cite,
        )
    if purpose is not None and purpose != terms.purpose:
        return _deny(
            DecisionReason.PURPOSE_MISMATCH,
            f"agreement {cite} is for {terms.purpose!r}, not {purpose!r}",
            dataset,
            version,
            cite,
        )
    cap, personal = caller.clearance, True
    rule: WhitelistRule | None = None
    source = regions.get(dataset.owner_region).jurisdiction
    destination = regions.get(caller.region or "").jurisdiction
    if source != destination:
        rule = whitelist.rule_for(source, destination, dataset, terms.purpose, at)
        if rule is None:
            return _deny(
                DecisionReason.NO_WHITELIST_RULE,
                f"no whitelist rule (version {version}) lets {dataset.id} cross from "
                f"{source} to {destination} for {terms.purpose!r}",
                dataset,
                version,
                cite,
            )
        cap = min(cap, rule.max_classification, Classification.SENSITIVE)
        personal = rule.personal_data
    columns, withheld = _capped(dataset, terms.permitted_fields(dataset), cap, personal)
    rule_id = None if rule is None else rule.rule_id
    if not columns:
        return _deny(
            DecisionReason.NOTHING_PERMITTED,
            f"agreement {cite} leaves no field within the caps",
            dataset,
            version,
            cite,
            rule_id,
            withheld,
        )
    kept = set(columns)
    transformations = tuple(
        t for t in terms.transformations.get(dataset.id, ()) if t.field is None or t.field in kept
    )
    return Decision(
        True,
        DecisionReason.AGREEMENT,
        f"under agreement {cite}",
        dataset.id,
        version,
        cite,
        rule_id,
        columns,
        withheld,
        terms.row_scope,
        transformations,
    )


def _capped(
    dataset: DatasetDefinition, permitted: frozenset[str], cap: Classification, personal: bool
) -> tuple[tuple[str, ...], dict[str, str]]:
    columns: list[str] = []
    withheld: dict[str, str] = {}
    for spec in dataset.fields:
        if spec.name not in permitted:
            withheld[spec.name] = "not granted by the agreement"
        elif spec.classification > cap:
            withheld[spec.name] = f"{spec.classification.label} is above {cap.label}"
        elif spec.personal and not personal:
            withheld[spec.name] = "personal data may not cross this border"
        else:
            columns.append(spec.name)
    return tuple(columns), withheld


def _deny(
    reason: DecisionReason,
    message: str,
    dataset: DatasetDefinition,
    version: int,
    agreement_id: str | None = None,
    rule_id: str | None = None,
    withheld: Mapping[str, str] | None = None,
) -> Decision:
    return Decision(
        False,
        reason,
        message,
        dataset.id,
        version,
        agreement_id,
        rule_id,
        withheld=dict(withheld or {}),
    )
