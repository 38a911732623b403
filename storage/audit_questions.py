"""The questions auditors ask, answered from the notification log: who received a dataset's
records, every policy decision about a partner, and the history of an agreement or of a
whitelist rule. Every answer names the log positions of the events it rests on, so each can be
proven against a signed tree head (ADR 17) and read again in the access or delivery log.

Nothing here decides who may ask: ``where`` narrows the access and delivery entries read to
those the asker may see (None: all of them), as for the access and delivery logs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.access import AccessRecord
from domain.agreement import SharingAgreement
from domain.delivery import DeliveryRecord
from domain.whitelist import WHITELIST_ID, Whitelist
from storage.access_log import AccessEntry
from storage.delivery_log import DeliveryEntry
from storage.ledger import LedgerApplication

_ACCESS = get_topic(vars(AccessRecord)["Recorded"])
_DELIVERY = get_topic(vars(DeliveryRecord)["Recorded"])
_AGREEMENT_EVENTS = {
    get_topic(vars(SharingAgreement)[name]): name.lower()
    for name in ("Proposed", "Approved", "Accepted", "Activated", "Suspended", "Resumed", "Revoked")
}
_RULE_ADDED = get_topic(vars(Whitelist)["RuleAdded"])
_RULE_WITHDRAWN = get_topic(vars(Whitelist)["RuleWithdrawn"])
# Agreement events that name the whitelist rules the agreement crosses a border under.
_CITING = {
    get_topic(vars(SharingAgreement)["Activated"]): "cited-by-activation",
    get_topic(vars(SharingAgreement)["Resumed"]): "cited-by-resumption",
}
# Query-API actions that hand a partner records (rows of a page, a summary, one record's
# provenance) or a snapshot (its files, where the grant covers them whole, else pointers to
# the records; its rows are those of the files the grant reaches).
DATA_READS = frozenset({"records", "aggregate", "snapshot", "provenance"})
QUERY_CHANNEL = "query"
SNAPSHOT_CHANNEL = "snapshot"
_SCAN = 500
# An HTTP change to the whitelist is logged as an access right after the change is stored.
_REQUEST_LOOKAHEAD = 50

Where = Callable[[AccessEntry | DeliveryEntry], bool] | None
_ACCESS_FIELDS = [f.name for f in fields(AccessEntry) if f.name != "position"]
_DELIVERY_FIELDS = [f.name for f in fields(DeliveryEntry) if f.name != "position"]


@dataclass
class Recipient:
    """What one partner received of a dataset on one channel under one agreement."""

    partner_id: str
    channel: str
    agreement_id: str | None
    first_at: datetime
    last_at: datetime
    whitelist_versions: list[int] = field(default_factory=list)
    records: int = 0
    entries: int = 0
    positions: list[int] = field(default_factory=list)

    def add(self, position: int, at: datetime, records: int, version: int | None) -> None:
        self.entries += 1
        self.records += records
        self.positions.append(position)
        self.first_at, self.last_at = min(self.first_at, at), max(self.last_at, at)
        if version is not None and version not in self.whitelist_versions:
            self.whitelist_versions.append(version)
            self.whitelist_versions.sort()


@dataclass(frozen=True)
class RecipientsPage:
    """Recipients of the entries in one page of the log; the next page adds to them."""

    dataset_id: str
    recipients: list[Recipient]
    next_after: int | None


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """A decision the policy made about a partner: on a query-API request or a delivery."""

    position: int
    at: datetime
    partner_id: str
    source: str  # the request's action, or "delivery"
    channel: str
    dataset_id: str | None
    allowed: bool
    reason: str
    agreement_id: str | None
    whitelist_version: int | None
    whitelist_rule: str | None
    records: int


@dataclass(frozen=True)
class DecisionsPage:
    partner_id: str
    decisions: list[PolicyDecision]
    next_after: int | None


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One change, at its log position: what it was, when, by whom, and what it said."""

    position: int
    at: datetime
    event: str
    by: str | None = None
    reason: str | None = None
    whitelist_version: int | None = None
    whitelist_rules: tuple[str, ...] | None = None
    agreement_id: str | None = None
    terms: dict[str, Any] | None = None
    rule: dict[str, Any] | None = None
    request_position: int | None = None


class AuditQuestions:
    """Reads the shared log for auditors through any of its applications; never writes."""

    def __init__(self, ledger: LedgerApplication) -> None:
        self.recorder, self.mapper = ledger.recorder, ledger.mapper

    def recipients(
        self,
        dataset_id: str,
        since: datetime | None,
        until: datetime | None,
        after: int = 0,
        limit: int = 1000,
        where: Where = None,
    ) -> RecipientsPage:
        """Per partner, channel and agreement: what was delivered of ``dataset_id`` and what
        the query API handed out of it in [since, until), from at most ``limit`` log entries
        after ``after``."""
        groups: dict[tuple[str, str, str | None], Recipient] = {}
        counted, last = 0, after
        for entry in self._entries([_ACCESS, _DELIVERY], after):
            if entry.dataset_id != dataset_id or not _within(entry.at, since, until):
                continue
            if isinstance(entry, AccessEntry):
                if not (entry.allowed and entry.action in DATA_READS and entry.rows > 0):
                    continue
                channel = SNAPSHOT_CHANNEL if entry.action == "snapshot" else QUERY_CHANNEL
                records = entry.rows
            else:
                channel, records = entry.channel, entry.records
            if entry.partner_id is None or (where is not None and not where(entry)):
                continue
            key = (entry.partner_id, channel, entry.agreement_id or None)
            recipient = groups.setdefault(key, Recipient(*key, entry.at, entry.at))
            recipient.add(entry.position, entry.at, records, entry.whitelist_version)
            counted, last = counted + 1, entry.position
            if counted == limit:
                break
        ordered = sorted(
            groups.values(), key=lambda r: (r.partner_id, r.channel, r.agreement_id or "")
        )
        return RecipientsPage(dataset_id, ordered, last if counted == limit else None)

    def decisions(
        self,
        partner_id: str,
        since: datetime | None,
        until: datetime | None,
        after: int = 0,
        limit: int = 1000,
        where: Where = None,
    ) -> DecisionsPage:
        """The policy's decisions about ``partner_id`` in [since, until), oldest first: each
        query-API request that reached the policy (granted or refused) and each delivery."""
        found: list[PolicyDecision] = []
        for entry in self._entries([_ACCESS, _DELIVERY], after):
            if entry.partner_id != partner_id or not _within(entry.at, since, until):
                continue
            if where is not None and not where(entry):
                continue
            if isinstance(entry, AccessEntry):
                if entry.whitelist_version is None:
                    continue  # no policy was reached (governance, catalog, no credential)
                found.append(
                    PolicyDecision(
                        entry.position, entry.at, partner_id, entry.action, QUERY_CHANNEL,
                        entry.dataset_id, entry.allowed, entry.reason, entry.agreement_id,
                        entry.whitelist_version, entry.whitelist_rule, entry.rows,
                    )
                )  # fmt: skip
            else:
                found.append(
                    PolicyDecision(
                        entry.position, entry.at, partner_id, "delivery", entry.channel,
                        entry.dataset_id, True, "agreement", entry.agreement_id or None,
                        entry.whitelist_version, None, entry.records,
                    )
                )  # fmt: skip
            if len(found) == limit:
                break
        return DecisionsPage(partner_id, found, found[-1].position if len(found) == limit else None)

    def agreement_history(self, agreement_id: str) -> list[HistoryEvent]:
        """Every recorded change of the agreement, oldest first (empty if there is none)."""
        originator = SharingAgreement.create_id(agreement_id)
        history: list[HistoryEvent] = []
        for position, topic, state in self._events(list(_AGREEMENT_EVENTS), originator):
            name = _AGREEMENT_EVENTS[topic]
            by, reason = _by_and_reason(name, state)
            rules = state.get("whitelist_rules")
            history.append(
                HistoryEvent(
                    position,
                    state["timestamp"],
                    name,
                    by=by,
                    reason=reason,
                    whitelist_rules=None if rules is None else tuple(rules),
                    agreement_id=agreement_id,
                    terms=state.get("terms"),
                )
            )
        return history

    def rule_history(self, rule_id: str) -> list[HistoryEvent]:
        """The rule's additions and withdrawals (with the whitelist version each made, and
        who made it when it was done over HTTP), and the agreements activated or resumed
        under it, oldest first."""
        history: list[HistoryEvent] = []
        topics = [_RULE_ADDED, _RULE_WITHDRAWN, *_CITING]
        for position, topic, state in self._events(topics, None):
            if topic in _CITING:
                if rule_id in state["whitelist_rules"]:
                    history.append(
                        HistoryEvent(
                            position,
                            state["timestamp"],
                            _CITING[topic],
                            by=state["by"],
                            whitelist_rules=tuple(state["whitelist_rules"]),
                            agreement_id=_agreement_id_of(self, state["originator_id"]),
                        )
                    )
                continue
            if state["originator_id"] != WHITELIST_ID:
                continue
            added = topic == _RULE_ADDED
            if (state["rule"]["rule_id"] if added else state["rule_id"]) != rule_id:
                continue
            action = "whitelist-add" if added else "whitelist-withdraw"
            request = self._request(position, action, rule_id)
            history.append(
                HistoryEvent(
                    position,
                    state["timestamp"],
                    "rule-added" if added else "rule-withdrawn",
                    by=None if request is None else request.partner_id or "admin",
                    reason=None if added else state["reason"],
                    whitelist_version=state["originator_version"],
                    rule=state["rule"] if added else None,
                    request_position=None if request is None else request.position,
                )
            )
        return history

    # Reading the log ---------------------------------------------------------------------

    def _notifications(
        self, topics: Sequence[str], after: int
    ) -> Iterator[tuple[int, str, dict[str, Any]]]:
        start = after + 1
        while True:
            found = self.recorder.select_notifications(start=start, limit=_SCAN, topics=topics)
            if not found:
                return
            for notification in found:
                event = self.mapper.to_domain_event(notification)
                yield notification.id, notification.topic, vars(event)
            start = found[-1].id + 1

    def _entries(self, topics: Sequence[str], after: int) -> Iterator[AccessEntry | DeliveryEntry]:
        for position, topic, state in self._notifications(topics, after):
            if topic == _ACCESS:
                yield AccessEntry(position, **{k: _plain(state[k]) for k in _ACCESS_FIELDS})
            else:
                yield DeliveryEntry(position, **{k: state[k] for k in _DELIVERY_FIELDS})

    def _events(
        self, topics: Sequence[str], originator: UUID | None
    ) -> Iterator[tuple[int, str, dict[str, Any]]]:
        for position, topic, state in self._notifications(topics, 0):
            if originator is None or state["originator_id"] == originator:
                yield position, topic, state

    def _request(self, position: int, action: str, rule_id: str) -> AccessEntry | None:
        """The HTTP request that made the whitelist change stored at ``position``, if any."""
        found = self.recorder.select_notifications(
            start=position + 1, limit=_REQUEST_LOOKAHEAD, topics=[_ACCESS]
        )
        for notification in found:
            state = vars(self.mapper.to_domain_event(notification))
            if (
                state["action"] == action
                and state["allowed"]
                and state["reason"] == f"rule {rule_id}"
            ):
                return AccessEntry(notification.id, **{k: _plain(state[k]) for k in _ACCESS_FIELDS})
        return None


def _within(at: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or at >= since) and (until is None or at < until)


def _plain(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _by_and_reason(event: str, state: dict[str, Any]) -> tuple[str | None, str | None]:
    if event == "proposed":
        return state["proposed_by"], None
    return state["by"], state.get("reason")


def _agreement_id_of(questions: AuditQuestions, originator: UUID) -> str | None:
    """The agreement id an agreement aggregate was created with (its first event)."""
    first = questions.recorder.select_events(originator, limit=1)
    if not first:
        return None
    state = vars(questions.mapper.to_domain_event(first[0]))
    agreement_id = state.get("agreement_id")
    return agreement_id if isinstance(agreement_id, str) else None
