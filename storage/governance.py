"""The governance application: partners and keys, the whitelist, agreements, decisions.

Use cases take ids and values and return plain values; library errors become named domain
errors. Every change is an event in the same store and notification log as the data.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import ParamSpec, TypeVar

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain.agreement import AgreementState, AgreementTerms, SharingAgreement
from domain.classification import Classification
from domain.dataset import DatasetDefinition
from domain.errors import (
    AgreementExistsError,
    AgreementNotFoundError,
    AgreementStateError,
    AgreementTermsError,
    PartnerExistsError,
    PartnerNotFoundError,
)
from domain.governance_index import GovernanceIndex
from domain.partner import KEY_PREFIX, Partner, key_digest, partner_id_for, split_key
from domain.policy import AgreementView, Caller, Decision, decide
from domain.region import RegionRegistry
from domain.whitelist import Whitelist, WhitelistRule, WhitelistView
from storage.delivery_fence import DeliveryFence, fence_for
from storage.ledger import LedgerApplication

_WRITE_ATTEMPTS = 5
P = ParamSpec("P")
R = TypeVar("R")


def _serialised(write: Callable[P, R]) -> Callable[P, R]:
    """A write reads aggregates, changes them and saves them at the versions it read; when
    another request saved one of them first (the index, say, which every new key and
    agreement changes), the store refuses the stale version. The write is then made again on
    what is stored now, as if the requests had come one after the other: the loser gets the
    answer the new state gives, not an internal error."""

    @wraps(write)
    def serialised(*args: P.args, **kwargs: P.kwargs) -> R:
        for _attempt in range(_WRITE_ATTEMPTS - 1):
            try:
                return write(*args, **kwargs)
            except IntegrityError:
                continue
        return write(*args, **kwargs)

    return serialised


DatasetLookup = Callable[[str], DatasetDefinition]


@dataclass(frozen=True, slots=True)
class PartnerInfo:
    partner_id: str
    region: str
    name: str
    clearance: Classification
    scopes: tuple[str, ...]
    active_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: ``key`` is shown once and never stored."""

    partner_id: str
    key_id: str
    key: str


@dataclass(frozen=True, slots=True)
class AgreementInfo:
    terms: AgreementTerms
    state: AgreementState
    whitelist_rules: tuple[str, ...]
    history: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class CutAgreement:
    """An agreement a proposed whitelist change would cut, and how."""

    agreement_id: str
    dataset_id: str
    before: str
    after: str


class Governance(LedgerApplication):
    """Use cases of partners, the whitelist and agreements."""

    def __init__(
        self,
        event_store_url: str,
        regions: RegionRegistry | None = None,
        **extra_env: object,
    ) -> None:
        super().__init__(event_store_url, **extra_env)
        self.regions = regions or RegionRegistry.default()
        self._fence: DeliveryFence | None = None

    # Partners and keys

    @_serialised
    def register_partner(
        self,
        region: str,
        name: str,
        clearance: Classification = Classification.PUBLIC,
        scopes: tuple[str, ...] = ("read",),
        partner_id: str | None = None,
    ) -> PartnerInfo:
        self.regions.get(region)
        wanted = partner_id or partner_id_for(region, name)
        index = self._index()
        if wanted in index.partner_ids:
            raise PartnerExistsError(f"partner {wanted!r} exists already")
        partner = Partner(wanted, region, name, clearance.label, list(scopes))
        index.add_partner(wanted)
        self.save(partner, index)
        return self.partner(wanted)

    def partner(self, partner_id: str, at: datetime | None = None) -> PartnerInfo:
        partner = self._partner(partner_id)
        now = at or datetime.now(UTC)
        return PartnerInfo(
            partner.partner_id,
            partner.region,
            partner.name,
            Classification.parse(partner.clearance),
            tuple(partner.scopes),
            tuple(key.key_id for key in partner.active_keys(now)),
        )

    def partners(self) -> list[PartnerInfo]:
        return [self.partner(pid) for pid in sorted(self._index().partner_ids)]

    @_serialised
    def issue_key(
        self, partner_id: str, at: datetime | None = None, valid_for: timedelta | None = None
    ) -> IssuedKey:
        partner = self._partner(partner_id)
        index = self._index()
        key_id = secrets.token_hex(6)
        key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        issued = at or datetime.now(UTC)
        partner.issue_key(
            key_id, key_digest(key), issued, None if valid_for is None else issued + valid_for
        )
        index.add_key(key_id, partner_id)
        self.save(partner, index)
        return IssuedKey(partner_id, key_id, key)

    def rotate_key(
        self, partner_id: str, old_key_id: str, overlap: timedelta, at: datetime | None = None
    ) -> IssuedKey:
        """A new key; the old one keeps working for ``overlap``, then ends."""
        now = at or datetime.now(UTC)
        partner = self._partner(partner_id)
        partner.retire_key(old_key_id, now + overlap)
        self.save(partner)
        return self.issue_key(partner_id, now)

    @_serialised
    def revoke_key(self, partner_id: str, key_id: str, reason: str) -> None:
        partner = self._partner(partner_id)
        partner.revoke_key(key_id, reason)
        self.save(partner)

    def authenticate(self, presented: str, at: datetime | None = None) -> Caller | None:
        """The partner a key belongs to, if the key is valid now; None otherwise."""
        parsed = split_key(presented)
        if parsed is None:
            return None
        key_id, whole = parsed
        owner = self._index().key_owners.get(key_id)
        if owner is None:
            return None
        partner = self._partner(owner)
        if not partner.key_accepts(key_id, whole, at or datetime.now(UTC)):
            return None
        return Caller(partner.partner_id, partner.region, Classification.parse(partner.clearance))

    # Whitelist

    def whitelist(self) -> WhitelistView:
        return self._whitelist().view()

    @_serialised
    def add_rule(self, rule: WhitelistRule) -> int:
        whitelist = self._whitelist()
        whitelist.add_rule(rule)
        self.save(whitelist)
        return whitelist.version

    @property
    def fence(self) -> DeliveryFence:
        """Held exclusively by changes that can end a grant (see storage.delivery_fence)."""
        if self._fence is None:
            self._fence = fence_for(self.event_store_url)
        return self._fence

    @_serialised
    def withdraw_rule(self, rule_id: str, reason: str) -> int:
        with self.fence.changing():
            whitelist = self._whitelist()
            whitelist.withdraw_rule(rule_id, reason)
            self.save(whitelist)
            return whitelist.version

    def dry_run_withdraw(
        self, rule_id: str, datasets: DatasetLookup, at: datetime | None = None
    ) -> list[CutAgreement]:
        """Which active agreements would lose access (or fields) if ``rule_id`` went."""
        current = self.whitelist()
        proposed = WhitelistView(
            current.version + 1, tuple(r for r in current.rules if r.rule_id != rule_id)
        )
        return self._cut_by(current, proposed, datasets, at or datetime.now(UTC))

    def dry_run_add(
        self, rule: WhitelistRule, datasets: DatasetLookup, at: datetime | None = None
    ) -> list[CutAgreement]:
        """Adding a rule only widens access; this confirms no active agreement is cut."""
        current = self.whitelist()
        proposed = WhitelistView(current.version + 1, (*current.rules, rule))
        return self._cut_by(current, proposed, datasets, at or datetime.now(UTC))

    def _cut_by(
        self,
        current: WhitelistView,
        proposed: WhitelistView,
        datasets: DatasetLookup,
        at: datetime,
    ) -> list[CutAgreement]:
        cut: list[CutAgreement] = []
        for info in self.agreements():
            if info.state is not AgreementState.ACTIVE:
                continue
            consumer = self._partner(info.terms.consumer_partner)
            caller = Caller(
                consumer.partner_id, consumer.region, Classification.parse(consumer.clearance)
            )
            view = [AgreementView(info.terms, info.state)]
            for dataset_id in sorted(info.terms.datasets):
                dataset = datasets(dataset_id)
                before = decide(caller, dataset, view, current, self.regions, at)
                after = decide(caller, dataset, view, proposed, self.regions, at)
                if before.allowed and (
                    not after.allowed or set(after.columns) < set(before.columns)
                ):
                    cut.append(
                        CutAgreement(
                            info.terms.agreement_id,
                            dataset_id,
                            f"{len(before.columns)} fields",
                            after.message if not after.allowed else f"{len(after.columns)} fields",
                        )
                    )
        return cut

    # Agreements

    @_serialised
    def propose(self, terms: AgreementTerms, by: str, datasets: DatasetLookup) -> AgreementInfo:
        self.regions.get(terms.provider_region)
        self._partner(terms.consumer_partner)
        for dataset_id in sorted(terms.datasets):
            dataset = datasets(dataset_id)
            if dataset.owner_region != terms.provider_region:
                raise AgreementTermsError(
                    f"agreement {terms.agreement_id!r}: {dataset_id} belongs to "
                    f"{dataset.owner_region}, not to the provider {terms.provider_region}"
                )
            terms.check_against(dataset)
        index = self._index()
        if terms.agreement_id in index.agreement_ids:
            raise AgreementExistsError(f"agreement {terms.agreement_id!r} exists already")
        agreement = SharingAgreement(terms.agreement_id, terms.as_dict(), by)
        index.add_agreement(terms.agreement_id)
        self.save(agreement, index)
        return self.agreement(terms.agreement_id)

    def approve(self, agreement_id: str, by: str) -> AgreementInfo:
        return self._change(agreement_id, lambda a: a.approve(by))

    def accept(self, agreement_id: str, by: str) -> AgreementInfo:
        return self._change(agreement_id, lambda a: a.accept(by))

    def activate(
        self, agreement_id: str, by: str, datasets: DatasetLookup, at: datetime | None = None
    ) -> AgreementInfo:
        now = at or datetime.now(UTC)
        rules = self._crossing_rules(self._agreement(agreement_id).terms, datasets, now)
        return self._change(agreement_id, lambda a: a.activate(by, now, rules))

    def suspend(self, agreement_id: str, by: str, reason: str) -> AgreementInfo:
        with self.fence.changing():
            return self._change(agreement_id, lambda a: a.suspend(by, reason))

    def resume(
        self, agreement_id: str, by: str, datasets: DatasetLookup, at: datetime | None = None
    ) -> AgreementInfo:
        now = at or datetime.now(UTC)
        rules = self._crossing_rules(self._agreement(agreement_id).terms, datasets, now)
        return self._change(agreement_id, lambda a: a.resume(by, now, rules))

    def revoke(self, agreement_id: str, by: str, reason: str) -> AgreementInfo:
        with self.fence.changing():
            return self._change(agreement_id, lambda a: a.revoke(by, reason))

    def agreement(self, agreement_id: str) -> AgreementInfo:
        agreement = self._agreement(agreement_id)
        return AgreementInfo(
            agreement.terms,
            agreement.state,
            tuple(agreement.whitelist_rules),
            tuple((state, note) for state, note in agreement.history),
        )

    def agreements(self, partner_id: str | None = None) -> list[AgreementInfo]:
        infos = [self.agreement(aid) for aid in sorted(self._index().agreement_ids)]
        if partner_id is None:
            return infos
        return [info for info in infos if info.terms.consumer_partner == partner_id]

    # Decisions

    def decide(
        self,
        caller: Caller,
        dataset: DatasetDefinition,
        at: datetime | None = None,
        purpose: str | None = None,
    ) -> Decision:
        """The policy's decision with the current whitelist and the caller's agreements."""
        views = (
            []
            if caller.partner_id is None
            else [AgreementView(i.terms, i.state) for i in self.agreements(caller.partner_id)]
        )
        return decide(
            caller, dataset, views, self.whitelist(), self.regions, at or datetime.now(UTC), purpose
        )

    def decide_for_period(
        self, caller: Caller, dataset: DatasetDefinition, at: datetime
    ) -> tuple[Decision, datetime | None, datetime | None]:
        """The decision at ``at``, and the period around it in which time alone cannot change
        it: [since, until), bounded by the nearest moments an agreement of the caller or a
        whitelist rule starts or ends (None: unbounded). Changes recorded meanwhile can."""
        views = (
            []
            if caller.partner_id is None
            else [AgreementView(i.terms, i.state) for i in self.agreements(caller.partner_id)]
        )
        whitelist = self.whitelist()
        decision = decide(caller, dataset, views, whitelist, self.regions, at)
        moments = [m for view in views for m in (view.terms.valid_from, view.terms.valid_until)]
        moments += [m for rule in whitelist.rules for m in (rule.valid_from, rule.valid_until)]
        since = max((m for m in moments if m is not None and m <= at), default=None)
        until = min((m for m in moments if m is not None and m > at), default=None)
        return decision, since, until

    # Internals

    def _crossing_rules(
        self, terms: AgreementTerms, datasets: DatasetLookup, at: datetime
    ) -> list[str]:
        consumer = self._partner(terms.consumer_partner)
        destination = self.regions.get(consumer.region).jurisdiction
        whitelist = self.whitelist()
        rules: list[str] = []
        for dataset_id in sorted(terms.datasets):
            dataset = datasets(dataset_id)
            source = self.regions.get(dataset.owner_region).jurisdiction
            if source == destination:
                continue
            rule = whitelist.rule_for(source, destination, dataset, terms.purpose, at)
            if rule is None:
                raise AgreementStateError(
                    f"agreement {terms.agreement_id!r}: no whitelist rule (version "
                    f"{whitelist.version}) lets {dataset_id} cross from {source} to "
                    f"{destination} for {terms.purpose!r}"
                )
            rules.append(rule.rule_id)
        return sorted(set(rules))

    @_serialised
    def _change(
        self, agreement_id: str, change: Callable[[SharingAgreement], None]
    ) -> AgreementInfo:
        agreement = self._agreement(agreement_id)
        change(agreement)
        self.save(agreement)
        return self.agreement(agreement_id)

    def _agreement(self, agreement_id: str) -> SharingAgreement:
        try:
            agreement: SharingAgreement = self.repository.get(
                SharingAgreement.create_id(agreement_id)
            )
        except AggregateNotFoundError:
            raise AgreementNotFoundError(f"no agreement {agreement_id!r}") from None
        return agreement

    def _partner(self, partner_id: str) -> Partner:
        try:
            partner: Partner = self.repository.get(Partner.create_id(partner_id))
        except AggregateNotFoundError:
            raise PartnerNotFoundError(f"no partner {partner_id!r}") from None
        return partner

    def _whitelist(self) -> Whitelist:
        try:
            whitelist: Whitelist = self.repository.get(Whitelist.create_id())
        except AggregateNotFoundError:
            return Whitelist()
        return whitelist

    def _index(self) -> GovernanceIndex:
        try:
            index: GovernanceIndex = self.repository.get(GovernanceIndex.create_id())
        except AggregateNotFoundError:
            return GovernanceIndex()
        return index
