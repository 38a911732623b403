"""Who may ask the auditors' questions, and what each may learn (ADR 20).

The administrator asks anything. A partner with the audit scope reads entries about itself
and about its region's datasets (the rule of the access and delivery logs), the history of
agreements it is party to (as consumer or as the provider region) and of whitelist rules that
let its region's datasets leave its jurisdiction or that its agreements were activated under;
an agreement or rule beyond that answers exactly as one that does not exist. Anyone else is
refused. Every question is an access in the access log.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from api.administration import unknown_agreement
from api.auth import AUDIT
from api.enforcement import PolicyService, unknown_dataset
from api.errors import ForbiddenError
from domain.errors import AgreementNotFoundError, DatasetNotFoundError, WhitelistRuleNotFoundError
from storage.access_log import AccessEntry
from storage.audit_questions import (
    AuditQuestions,
    DecisionsPage,
    HistoryEvent,
    RecipientsPage,
    Where,
)
from storage.delivery_log import DeliveryEntry
from storage.errors import BadFilterError


@dataclass
class _Outcome:
    rows: int = 0
    reason: str = "audit"
    dataset_id: str | None = None
    agreement_id: str | None = None


def check_period(since: datetime | None, until: datetime | None) -> None:
    """Both bounds carry a UTC offset, and ``since`` comes before ``until``."""
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.utcoffset() is None:
            raise BadFilterError(name, f"{name} needs a UTC offset, e.g. 2026-11-20T08:00:00Z")
    if since is not None and until is not None and since >= until:
        raise BadFilterError("until", "until must come after since")


class AuditorQuestions:
    """The auditors' questions, asked as one principal may ask them."""

    def __init__(self, policy: PolicyService) -> None:
        self._policy = policy
        self.principal = policy.principal

    @property
    def _questions(self) -> AuditQuestions:
        return AuditQuestions(self._policy.access_log)

    def recipients(
        self,
        dataset_id: str,
        since: datetime | None,
        until: datetime | None,
        after: int,
        limit: int,
    ) -> RecipientsPage:
        with self._logged("audit-recipients", dataset_id=dataset_id) as outcome:
            where = self._entries_scope()
            check_period(since, until)
            if self.principal.admin:
                try:
                    self._policy.query.catalog.get(dataset_id, self._policy.query.regions)
                except DatasetNotFoundError:
                    raise unknown_dataset(dataset_id) from None
            page = self._questions.recipients(dataset_id, since, until, after, limit, where)
            outcome.rows = len(page.recipients)
            return page

    def decisions(
        self,
        partner_id: str,
        since: datetime | None,
        until: datetime | None,
        after: int,
        limit: int,
    ) -> DecisionsPage:
        with self._logged("audit-decisions") as outcome:
            outcome.reason = f"audit: partner {partner_id}"
            where = self._entries_scope()
            check_period(since, until)
            if self.principal.admin:
                self._policy.governance.partner(partner_id)  # unknown: 404
            page = self._questions.decisions(partner_id, since, until, after, limit, where)
            outcome.rows = len(page.decisions)
            return page

    def agreement_history(self, agreement_id: str) -> list[HistoryEvent]:
        with self._logged("audit-agreement-history", agreement_id=agreement_id) as outcome:
            self._auditor()
            try:
                terms = self._policy.governance.agreement(agreement_id).terms
            except AgreementNotFoundError:
                raise unknown_agreement(agreement_id) from None
            caller = self.principal.caller
            party = caller.partner_id == terms.consumer_partner or (
                caller.region == terms.provider_region
            )
            if not (self.principal.admin or party):
                raise unknown_agreement(agreement_id)
            history = self._questions.agreement_history(agreement_id)
            outcome.rows = len(history)
            return history

    def rule_history(self, rule_id: str) -> list[HistoryEvent]:
        with self._logged("audit-rule-history") as outcome:
            outcome.reason = f"audit: rule {rule_id}"
            self._auditor()
            history = self._questions.rule_history(rule_id)
            if not any(e.rule is not None for e in history) or not self._may_see_rule(history):
                raise WhitelistRuleNotFoundError(f"no whitelist rule {rule_id!r}")
            outcome.rows = len(history)
            return history

    # Scope --------------------------------------------------------------------------------

    def _auditor(self) -> None:
        if not self.principal.admin and AUDIT not in self.principal.scopes:
            raise ForbiddenError("asking auditors' questions needs the admin or audit scope")

    def _owned(self) -> list[tuple[str, str]]:
        """(id, kind) of each dataset the caller's region owns."""
        region = self.principal.caller.region
        return [
            (d.definition.id, d.definition.kind.value)
            for d in self._policy.query.list_datasets()
            if d.definition.owner_region == region
        ]

    def _entries_scope(self) -> Where:
        self._auditor()
        if self.principal.admin:
            return None
        me = self.principal.caller.partner_id
        owned = {dataset_id for dataset_id, _kind in self._owned()}

        def where(entry: AccessEntry | DeliveryEntry) -> bool:
            return entry.partner_id == me or entry.dataset_id in owned

        return where

    def _may_see_rule(self, history: list[HistoryEvent]) -> bool:
        """The administrator sees every rule; a partner one that, as it was ever added, lets
        one of its region's datasets leave its jurisdiction, or that an agreement it is party
        to was activated or resumed under."""
        if self.principal.admin:
            return True
        caller = self.principal.caller
        if caller.region is None:
            return False
        jurisdiction = self._policy.governance.regions.get(caller.region).jurisdiction
        owned = self._owned()
        for event in history:
            rule = event.rule
            if rule is not None:
                if rule["source_jurisdiction"] == jurisdiction and any(
                    rule["dataset_id"] == dataset_id or rule["dataset_kind"] == kind
                    for dataset_id, kind in owned
                ):
                    return True
            elif event.agreement_id is not None:
                terms = self._policy.governance.agreement(event.agreement_id).terms
                if caller.partner_id == terms.consumer_partner or (
                    caller.region == terms.provider_region
                ):
                    return True
        return False

    @contextmanager
    def _logged(
        self, action: str, dataset_id: str | None = None, agreement_id: str | None = None
    ) -> Iterator[_Outcome]:
        """Records the question when answered, or refused (then with why)."""
        outcome = _Outcome(dataset_id=dataset_id, agreement_id=agreement_id)
        allowed = False
        try:
            yield outcome
            allowed = True
        except ForbiddenError:
            outcome.rows, outcome.reason = 0, "no-audit-scope"
            raise
        except Exception as error:
            outcome.rows, outcome.reason = 0, f"{type(error).__name__}: {error}"[:500]
            raise
        finally:
            self._policy.access_log.record(
                self.principal.caller,
                action,
                None,
                rows=outcome.rows,
                reason=outcome.reason,
                dataset_id=outcome.dataset_id,
                allowed=allowed,
                agreement_id=outcome.agreement_id,
            )
