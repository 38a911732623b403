"""Request and response bodies of /v1/subscriptions."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.dependencies import DATASET_ID_PATTERN
from domain.subscription import MAX_WEBHOOK_URL, Channel, SubscriptionState

PARTNER_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,79}$"


class SubscribeRequest(BaseModel):
    """What a partner asks for; the agreement, the state and the id are the platform's."""

    model_config = ConfigDict(extra="forbid")

    dataset_id: str = Field(max_length=120, pattern=DATASET_ID_PATTERN)
    channel: Channel = Field(description="kafka, sse, websocket or webhook.")
    webhook_url: str | None = Field(
        default=None,
        max_length=MAX_WEBHOOK_URL,
        description="Where a webhook subscription's deliveries are POSTed (webhook only).",
    )
    start_position: int = Field(
        default=1,
        ge=1,
        description="The first event-log position delivered; 1 delivers the whole history "
        "the agreement reaches.",
    )
    partner_id: str | None = Field(
        default=None,
        pattern=PARTNER_ID_PATTERN,
        description="The partner subscribed; only the administrator names one.",
    )


class StateChange(BaseModel):
    state: str = Field(description="The state entered, or secret-rotated.")
    by: str
    reason: str


class DeliveryProgress(BaseModel):
    """How far delivery has come; positions are event-log positions."""

    head_position: int = Field(description="The newest event-log position.")
    delivered_position: int = Field(
        description="Delivered through this position: the relay's recorded position for Kafka "
        "and webhooks, the last position sent for server-sent events and WebSocket."
    )
    lag: int = Field(description="head_position - delivered_position, never below 0.")
    records_last_minute: int = Field(description="Records delivered in the last minute.")


class SubscriptionView(BaseModel):
    subscription_id: str
    partner_id: str
    dataset_id: str
    agreement_id: str = Field(description="The agreement the subscription was taken out under.")
    channel: Channel
    state: SubscriptionState
    webhook_url: str | None = None
    topic: str | None = Field(default=None, description="The Kafka topic (kafka only).")
    start_position: int
    secret_version: int | None = Field(
        default=None, description="The signing secret's version (webhook only)."
    )
    dead_letter_position: int | None = None
    history: list[StateChange]
    delivery: DeliveryProgress
    signing_secret: str | None = Field(
        default=None,
        description="The webhook signing secret: shown once, in the answer that creates the "
        "subscription.",
    )


class SubscriptionList(BaseModel):
    subscriptions: list[SubscriptionView]


class DeliveryEntryModel(BaseModel):
    """One batch delivered on one subscription's channel: enough to tell what a partner
    received of a dataset, when, and under which agreement and whitelist version."""

    position: int = Field(description="Position in the event log; page with `after`.")
    at: datetime
    subscription_id: str
    partner_id: str
    dataset_id: str
    channel: Channel
    agreement_id: str
    whitelist_version: int
    first_position: int = Field(description="The first event-log position of the batch.")
    last_position: int = Field(description="The last event-log position of the batch.")
    records: int
    record_ids_digest: str = Field(
        description="sha256 of the delivered record ids, sorted, one per line."
    )


class DeliveryLogPage(BaseModel):
    """Deliveries after a position, oldest first."""

    entries: list[DeliveryEntryModel]
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null when this page was not full."
    )
