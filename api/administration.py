"""Who may change partners, the whitelist and agreements over the API, in one place.

The changes themselves are Governance's use cases; this service decides whether the caller
may ask for them, and records every request in the access log, refusals included.

- Partners, keys and the whitelist: the administrator only (403 for a partner, as the access
  log answers a partner without the audit scope). A partner sees itself among the partners.
- Agreements: the administrator does everything. A partner sees the agreements it consumes
  and those its region provides; any other answers exactly as one that does not exist. Of
  those it sees, a partner of the provider region may approve, the consumer may accept; any
  other transition is 403. The ``by`` of every change is the caller's name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from api.auth import Principal
from api.errors import ForbiddenError, RejectedChangeError, has_own_problem
from domain.agreement import AgreementTerms
from domain.classification import Classification
from domain.dataset import DatasetDefinition
from domain.errors import (
    AgreementNotFoundError,
    AgreementTermsError,
    ApiKeyNotFoundError,
    DomainError,
    PartnerError,
    PartnerNotFoundError,
    WhitelistRuleExistsError,
    WhitelistRuleNotFoundError,
)
from domain.whitelist import WhitelistRule, WhitelistView
from storage.access_log import AccessLog
from storage.governance import AgreementInfo, CutAgreement, Governance, IssuedKey, PartnerInfo
from storage.query import QueryService

Transition = Literal["approve", "accept", "activate", "suspend", "resume", "revoke"]
Party = Literal["provider", "consumer"]

# The transitions a party to an agreement may make besides the administrator.
PARTY_TRANSITIONS: dict[Transition, Party] = {"approve": "provider", "accept": "consumer"}


def unknown_agreement(agreement_id: str) -> AgreementNotFoundError:
    """The one answer for an agreement that does not exist or that the caller may not see."""
    return AgreementNotFoundError(f"no agreement {agreement_id!r}")


def unknown_partner(partner_id: str) -> PartnerNotFoundError:
    """The one answer for a partner that does not exist or that the caller may not see."""
    return PartnerNotFoundError(f"no partner {partner_id!r}")


@dataclass(frozen=True, slots=True)
class WhitelistOutcome:
    dry_run: bool
    rule_id: str
    whitelist_version: int
    cut: list[CutAgreement]


@dataclass
class _Outcome:
    rows: int = 0
    reason: str = ""
    agreement_id: str | None = None


class AdministrationService:
    """Governance's use cases as one principal may call them, each request logged."""

    def __init__(
        self,
        principal: Principal,
        governance: Callable[[], Governance],
        query: Callable[[], QueryService],
        access_log: Callable[[], AccessLog],
    ) -> None:
        self.principal = principal
        self._governance, self._query, self._access_log = governance, query, access_log

    @property
    def governance(self) -> Governance:
        return self._governance()

    def dataset(self, dataset_id: str) -> DatasetDefinition:
        query = self._query()
        return query.catalog.get(dataset_id, query.regions)

    # Partners and keys -----------------------------------------------------------------------

    def register_partner(
        self,
        region: str,
        name: str,
        clearance: str,
        scopes: tuple[str, ...],
        partner_id: str | None,
    ) -> tuple[PartnerInfo, IssuedKey]:
        with self._logged("partner-register") as outcome:
            self._admin_only("registering a partner")
            governance = self.governance
            info = governance.register_partner(
                region, name, Classification.parse(clearance), scopes, partner_id
            )
            issued = governance.issue_key(info.partner_id)
            outcome.reason, outcome.rows = f"registered {info.partner_id}", 1
            return governance.partner(info.partner_id), issued

    def partners(self) -> list[PartnerInfo]:
        with self._logged("partners") as outcome:
            me = self.principal.caller.partner_id
            if self.principal.admin:
                found = self.governance.partners()
            else:
                assert me is not None
                found = [self.governance.partner(me)]
            outcome.rows = len(found)
            return found

    def partner(self, partner_id: str) -> PartnerInfo:
        with self._logged("partner") as outcome:
            if not self.principal.admin and partner_id != self.principal.caller.partner_id:
                raise unknown_partner(partner_id)
            info = self.governance.partner(partner_id)
            outcome.rows = 1
            return info

    def issue_key(self, partner_id: str, replaces: str | None, overlap: timedelta) -> IssuedKey:
        with self._logged("key-issue") as outcome:
            self._admin_only("issuing an API key")
            governance = self.governance
            if replaces is None:
                issued = governance.issue_key(partner_id)
            else:
                governance.partner(partner_id)  # an unknown partner is a 404, not a bad body
                try:
                    issued = governance.rotate_key(partner_id, replaces, overlap)
                except ApiKeyNotFoundError as error:
                    raise PartnerError(f"replaces: {error}") from None
            outcome.reason, outcome.rows = f"key {issued.key_id} of {partner_id}", 1
            return issued

    def revoke_key(self, partner_id: str, key_id: str, reason: str) -> PartnerInfo:
        with self._logged("key-revoke") as outcome:
            self._admin_only("revoking an API key")
            self.governance.revoke_key(partner_id, key_id, reason)
            outcome.reason, outcome.rows = f"key {key_id} of {partner_id}", 1
            return self.governance.partner(partner_id)

    # Whitelist ---------------------------------------------------------------------------------

    def whitelist(self) -> WhitelistView:
        with self._logged("whitelist") as outcome:
            self._admin_only("reading the whitelist")
            view = self.governance.whitelist()
            outcome.rows = len(view.rules)
            return view

    def add_rule(self, written: Mapping[str, Any], dry_run: bool) -> WhitelistOutcome:
        """Add the rule ``written`` in its plain form, or only say what adding it would cut."""
        action = "whitelist-add-dry-run" if dry_run else "whitelist-add"
        with self._logged(action) as outcome:
            self._admin_only("changing the whitelist")
            rule = WhitelistRule.from_dict(written)
            governance = self.governance
            current = governance.whitelist()
            if any(r.rule_id == rule.rule_id for r in current.rules):
                raise WhitelistRuleExistsError(f"whitelist rule {rule.rule_id!r} exists already")
            cut = governance.dry_run_add(rule, self.dataset)
            version = current.version if dry_run else governance.add_rule(rule)
            outcome.reason, outcome.rows = f"rule {rule.rule_id}", len(cut)
            return WhitelistOutcome(dry_run, rule.rule_id, version, cut)

    def withdraw_rule(self, rule_id: str, reason: str, dry_run: bool) -> WhitelistOutcome:
        action = "whitelist-withdraw-dry-run" if dry_run else "whitelist-withdraw"
        with self._logged(action) as outcome:
            self._admin_only("changing the whitelist")
            governance = self.governance
            current = governance.whitelist()
            if all(r.rule_id != rule_id for r in current.rules):
                raise WhitelistRuleNotFoundError(f"no whitelist rule {rule_id!r}")
            cut = governance.dry_run_withdraw(rule_id, self.dataset)
            version = current.version if dry_run else governance.withdraw_rule(rule_id, reason)
            outcome.reason, outcome.rows = f"rule {rule_id}", len(cut)
            return WhitelistOutcome(dry_run, rule_id, version, cut)

    # Agreements -------------------------------------------------------------------------------

    def agreements(self) -> list[AgreementInfo]:
        with self._logged("agreements") as outcome:
            found = [a for a in self.governance.agreements() if self._party(a.terms) is not None]
            outcome.rows = len(found)
            return found

    def agreement(self, agreement_id: str) -> AgreementInfo:
        with self._logged("agreement", agreement_id) as outcome:
            info = self._visible(agreement_id)
            outcome.rows = 1
            return info

    def propose(
        self,
        agreement_id: str,
        datasets: list[str],
        provider: str | None,
        terms: Callable[[str], AgreementTerms],
    ) -> AgreementInfo:
        """``terms`` makes the terms for the provider region: ``provider``, or else the
        region that owns the first of ``datasets`` (every one must belong to it)."""
        with self._logged("agreement-propose", agreement_id) as outcome:
            self._admin_only("proposing an agreement")
            region = provider or self.dataset(min(datasets)).owner_region
            try:
                info = self.governance.propose(terms(region), self.principal.name, self.dataset)
            except PartnerNotFoundError as error:
                raise AgreementTermsError(f"consumer_partner: {error}") from None
            outcome.reason, outcome.rows = "proposed", 1
            return info

    def transition(
        self, agreement_id: str, transition: Transition, reason: str = ""
    ) -> AgreementInfo:
        with self._logged(f"agreement-{transition}", agreement_id) as outcome:
            info = self._visible(agreement_id)
            party = self._party(info.terms)
            if party != "admin" and PARTY_TRANSITIONS.get(transition) != party:
                raise ForbiddenError(self._who_may(transition, agreement_id))
            governance, by = self.governance, self.principal.name
            changes: dict[Transition, Callable[[], AgreementInfo]] = {
                "approve": lambda: governance.approve(agreement_id, by),
                "accept": lambda: governance.accept(agreement_id, by),
                "activate": lambda: governance.activate(agreement_id, by, self.dataset),
                "suspend": lambda: governance.suspend(agreement_id, by, reason),
                "resume": lambda: governance.resume(agreement_id, by, self.dataset),
                "revoke": lambda: governance.revoke(agreement_id, by, reason),
            }
            changed = changes[transition]()
            outcome.reason, outcome.rows = changed.state.value, 1
            return changed

    # Internals ------------------------------------------------------------------------------

    def _admin_only(self, what: str) -> None:
        if not self.principal.admin:
            raise ForbiddenError(f"{what} needs the admin scope")

    def _party(self, terms: AgreementTerms) -> Party | Literal["admin"] | None:
        """How the caller stands to an agreement; None if it may not see it."""
        if self.principal.admin:
            return "admin"
        caller = self.principal.caller
        if terms.consumer_partner == caller.partner_id:
            return "consumer"
        if terms.provider_region == caller.region:
            return "provider"
        return None

    def _visible(self, agreement_id: str) -> AgreementInfo:
        try:
            info = self.governance.agreement(agreement_id)
        except AgreementNotFoundError:
            raise unknown_agreement(agreement_id) from None
        if self._party(info.terms) is None:
            raise unknown_agreement(agreement_id)
        return info

    @staticmethod
    def _who_may(transition: Transition, agreement_id: str) -> str:
        party = PARTY_TRANSITIONS.get(transition)
        also = {"provider": " or a partner of the provider region", "consumer": " or the consumer"}
        return (
            f"only the administrator{also[party] if party else ''} may {transition} "
            f"agreement {agreement_id!r}"
        )

    @contextmanager
    def _logged(self, action: str, agreement_id: str | None = None) -> Iterator[_Outcome]:
        """Records the request when the answer is ready, or refused (then with the error)."""
        outcome = _Outcome(agreement_id=agreement_id)
        allowed = False
        try:
            yield outcome
            allowed = True
        except Exception as error:
            outcome.rows, outcome.reason = 0, f"{type(error).__name__}: {error}"[:500]
            if isinstance(error, DomainError) and not has_own_problem(error):
                raise RejectedChangeError(str(error)) from error
            raise
        finally:
            self._access_log().record(
                self.principal.caller,
                action,
                None,
                rows=outcome.rows,
                reason=outcome.reason or "governance",
                allowed=allowed,
                agreement_id=outcome.agreement_id,
            )
