"""Every delivery to a subscriber, so an auditor can tell what a partner received of a dataset,
when, and under which agreement and whitelist version.

Like accesses, each delivery is an aggregate of one event: relays and API streams record
concurrently without contending for a version. The records themselves are named by the log
range and a digest of their ids; replaying the feed over that range under the same decision
gives them back.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event


class DeliveryRecord(Aggregate):
    """One batch of records delivered on one subscription's channel."""

    @staticmethod
    def create_id() -> UUID:
        return uuid4()

    @event("Recorded")
    def __init__(
        self,
        at: datetime,
        subscription_id: str,
        partner_id: str,
        dataset_id: str,
        channel: str,
        agreement_id: str,
        whitelist_version: int,
        first_position: int,
        last_position: int,
        records: int,
        record_ids_digest: str,
    ) -> None:
        self.at = at
        self.subscription_id = subscription_id
        self.partner_id = partner_id
        self.dataset_id = dataset_id
        self.channel = channel
        self.agreement_id = agreement_id
        self.whitelist_version = whitelist_version
        self.first_position = first_position
        self.last_position = last_position
        self.records = records
        self.record_ids_digest = record_ids_digest
