"""The access log: every data request's decision, recorded and listed for auditors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.utils import get_topic

from domain.access import AccessRecord
from domain.policy import Caller, Decision
from storage.ledger import LedgerApplication

_RECORDED = get_topic(vars(AccessRecord)["Recorded"])


@dataclass(frozen=True, slots=True)
class AccessEntry:
    position: int
    at: datetime
    partner_id: str | None
    action: str
    dataset_id: str | None
    allowed: bool
    reason: str
    agreement_id: str | None
    whitelist_version: int | None
    whitelist_rule: str | None
    rows: int
    columns: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "at": self.at.isoformat(),
            "partner_id": self.partner_id,
            "action": self.action,
            "dataset_id": self.dataset_id,
            "allowed": self.allowed,
            "reason": self.reason,
            "agreement_id": self.agreement_id,
            "whitelist_version": self.whitelist_version,
            "whitelist_rule": self.whitelist_rule,
            "rows": self.rows,
            "columns": list(self.columns),
        }


class AccessLog(LedgerApplication):
    """Records decisions as they are made; lists them by position, partner and dataset."""

    def record(
        self,
        caller: Caller | None,
        action: str,
        decision: Decision | None,
        rows: int = 0,
        at: datetime | None = None,
        reason: str | None = None,
        dataset_id: str | None = None,
        allowed: bool | None = None,
        agreement_id: str | None = None,
    ) -> None:
        """One access. ``decision`` None means no policy was reached (e.g. no credential);
        then ``reason`` says why, and ``allowed`` whether the request was answered (a
        request for no one dataset, such as the catalog, is answered without a decision);
        ``agreement_id`` names the agreement a governance request was about."""
        entry = AccessRecord(
            at=at or datetime.now(UTC),
            partner_id=None if caller is None else caller.partner_id,
            action=action,
            dataset_id=dataset_id if decision is None else decision.dataset_id,
            allowed=(decision is not None and decision.allowed) if allowed is None else allowed,
            reason=reason or ("" if decision is None else decision.reason.value),
            agreement_id=agreement_id if decision is None else decision.agreement_id,
            whitelist_version=None if decision is None else decision.whitelist_version,
            whitelist_rule=None if decision is None else decision.whitelist_rule,
            rows=rows,
            columns=[] if decision is None else list(decision.columns),
        )
        self.save(entry)

    def entries(
        self,
        after: int = 0,
        limit: int = 1000,
        partner_id: str | None = None,
        dataset_id: str | None = None,
        where: Callable[[AccessEntry], bool] | None = None,
    ) -> list[AccessEntry]:
        """Entries after log position ``after``, oldest first, at most ``limit`` of them;
        ``where`` keeps only those it is true of."""
        found: list[AccessEntry] = []
        start = after + 1
        while len(found) < limit:
            notifications = self.recorder.select_notifications(
                start=start, limit=max(limit, 100), topics=[_RECORDED]
            )
            if not notifications:
                break
            for notification in notifications:
                entry = _entry(notification.id, vars(self.mapper.to_domain_event(notification)))
                if (
                    (partner_id is None or entry.partner_id == partner_id)
                    and (dataset_id is None or entry.dataset_id == dataset_id)
                    and (where is None or where(entry))
                ):
                    found.append(entry)
                    if len(found) == limit:
                        break
            start = notifications[-1].id + 1
        return found


def _entry(position: int, state: dict[str, Any]) -> AccessEntry:
    return AccessEntry(
        position=position,
        at=state["at"],
        partner_id=state["partner_id"],
        action=state["action"],
        dataset_id=state["dataset_id"],
        allowed=state["allowed"],
        reason=state["reason"],
        agreement_id=state["agreement_id"],
        whitelist_version=state["whitelist_version"],
        whitelist_rule=state["whitelist_rule"],
        rows=state["rows"],
        columns=tuple(state["columns"]),
    )
