"""Every access to shared data, as a record of the decision that allowed or denied it.

Each access is an aggregate of one event, so concurrent requests never contend for a version;
the log of them is the notification log read by this event's topic.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event


class AccessRecord(Aggregate):
    """Who asked for what, what the policy decided on which grounds, and what was returned."""

    @staticmethod
    def create_id() -> UUID:
        return uuid4()

    @event("Recorded")
    def __init__(
        self,
        at: datetime,
        partner_id: str | None,
        action: str,
        dataset_id: str | None,
        allowed: bool,
        reason: str,
        agreement_id: str | None,
        whitelist_version: int | None,
        whitelist_rule: str | None,
        rows: int,
        columns: list[str],
    ) -> None:
        self.at = at
        self.partner_id = partner_id
        self.action = action
        self.dataset_id = dataset_id
        self.allowed = allowed
        self.reason = reason
        self.agreement_id = agreement_id
        self.whitelist_version = whitelist_version
        self.whitelist_rule = whitelist_rule
        self.rows = rows
        self.columns = columns
