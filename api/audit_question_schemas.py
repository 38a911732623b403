"""Answers to the questions auditors ask (ADR 20). Every answer names the log positions of
the events it rests on: each can be proven with ``/v1/audit/proofs/inclusion``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from storage.audit_questions import (
    DecisionsPage,
    HistoryEvent,
    PolicyDecision,
    Recipient,
    RecipientsPage,
)

NEXT_AFTER = "Pass as `after` for the next page; null on the last page."


class RecipientModel(BaseModel):
    """What one partner received of the dataset on one channel under one agreement."""

    partner_id: str
    channel: str = Field(
        description="The subscription's channel; `query` for records, summaries and provenance "
        "from the query API, `snapshot` for a snapshot read there."
    )
    agreement_id: str | None = Field(description="Null where the partner's region owns it.")
    whitelist_versions: list[int]
    records: int = Field(
        description="Records delivered, rows the query API returned, or rows of the snapshot "
        "files the grant reaches."
    )
    entries: int = Field(description="Deliveries or requests.")
    first_at: datetime
    last_at: datetime
    positions: list[int] = Field(description="Log positions of those deliveries and requests.")

    @classmethod
    def of(cls, recipient: Recipient) -> RecipientModel:
        return cls(
            partner_id=recipient.partner_id,
            channel=recipient.channel,
            agreement_id=recipient.agreement_id,
            whitelist_versions=recipient.whitelist_versions,
            records=recipient.records,
            entries=recipient.entries,
            first_at=recipient.first_at,
            last_at=recipient.last_at,
            positions=recipient.positions,
        )


class RecipientsAnswer(BaseModel):
    """Who received the dataset's records, from the log entries of one page."""

    dataset_id: str
    recipients: list[RecipientModel]
    next_after: int | None = Field(description=NEXT_AFTER)

    @classmethod
    def of(cls, page: RecipientsPage) -> RecipientsAnswer:
        return cls(
            dataset_id=page.dataset_id,
            recipients=[RecipientModel.of(r) for r in page.recipients],
            next_after=page.next_after,
        )


class DecisionModel(BaseModel):
    """One policy decision about the partner."""

    position: int
    at: datetime
    source: str = Field(description="The query API's action, or `delivery`.")
    channel: str
    dataset_id: str | None
    allowed: bool
    reason: str
    agreement_id: str | None
    whitelist_version: int | None
    whitelist_rule: str | None
    records: int

    @classmethod
    def of(cls, decision: PolicyDecision) -> DecisionModel:
        return cls(
            position=decision.position,
            at=decision.at,
            source=decision.source,
            channel=decision.channel,
            dataset_id=decision.dataset_id,
            allowed=decision.allowed,
            reason=decision.reason,
            agreement_id=decision.agreement_id,
            whitelist_version=decision.whitelist_version,
            whitelist_rule=decision.whitelist_rule,
            records=decision.records,
        )


class DecisionsAnswer(BaseModel):
    """The partner's policy decisions, oldest first."""

    partner_id: str
    decisions: list[DecisionModel]
    next_after: int | None = Field(description=NEXT_AFTER)

    @classmethod
    def of(cls, page: DecisionsPage) -> DecisionsAnswer:
        return cls(
            partner_id=page.partner_id,
            decisions=[DecisionModel.of(d) for d in page.decisions],
            next_after=page.next_after,
        )


class HistoryEventModel(BaseModel):
    """One change, at its log position."""

    position: int
    at: datetime
    event: str
    by: str | None = Field(description="Who made it; null where the log does not say.")
    reason: str | None
    whitelist_version: int | None = Field(description="The version a whitelist change made.")
    whitelist_rules: list[str] | None = Field(
        description="Rules an activation or resumption crosses a border under."
    )
    agreement_id: str | None
    terms: dict[str, Any] | None = Field(description="The terms proposed.")
    rule: dict[str, Any] | None = Field(description="The rule as added.")
    request_position: int | None = Field(
        description="Log position of the HTTP request that made the change, if one did."
    )

    @classmethod
    def of(cls, event: HistoryEvent) -> HistoryEventModel:
        rules = event.whitelist_rules
        return cls(
            position=event.position,
            at=event.at,
            event=event.event,
            by=event.by,
            reason=event.reason,
            whitelist_version=event.whitelist_version,
            whitelist_rules=None if rules is None else list(rules),
            agreement_id=event.agreement_id,
            terms=event.terms,
            rule=event.rule,
            request_position=event.request_position,
        )


class HistoryAnswer(BaseModel):
    """Every event of an agreement or a whitelist rule, oldest first."""

    subject: str = Field(description="`agreement` or `whitelist-rule`.")
    id: str
    events: list[HistoryEventModel]

    @classmethod
    def of(cls, subject: str, subject_id: str, events: list[HistoryEvent]) -> HistoryAnswer:
        return cls(subject=subject, id=subject_id, events=[HistoryEventModel.of(e) for e in events])
