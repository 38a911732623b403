"""One index over partners, their keys and agreements, so each can be listed or found by id."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

GOVERNANCE_INDEX_ID = uuid5(NAMESPACE_URL, "urn:baylink:governance-index")


class GovernanceIndex(Aggregate):
    @staticmethod
    def create_id() -> UUID:
        return GOVERNANCE_INDEX_ID

    @event("Created")
    def __init__(self) -> None:
        self.partner_ids: list[str] = []
        self.key_owners: dict[str, str] = {}
        self.agreement_ids: list[str] = []

    @event("PartnerAdded")
    def add_partner(self, partner_id: str) -> None:
        self.partner_ids.append(partner_id)

    @event("KeyAdded")
    def add_key(self, key_id: str, partner_id: str) -> None:
        self.key_owners[key_id] = partner_id

    @event("AgreementAdded")
    def add_agreement(self, agreement_id: str) -> None:
        self.agreement_ids.append(agreement_id)
