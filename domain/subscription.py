"""Subscriptions: a partner's standing request to receive a dataset live, under an agreement.

A subscription names the channel records are delivered on: the partner's own Kafka topic,
server-sent events, a WebSocket or a webhook. Its state is the partner's choice (active,
paused, cancelled) or the relay's verdict on a webhook that keeps failing (dead-lettered,
until redriven). Whether a record may be delivered at all is not recorded here: the policy
decides that at every delivery, from the agreement and the whitelist as they are then.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import SubscriptionStateError, SubscriptionTermsError

_SUBSCRIPTION_NAMESPACE = uuid5(NAMESPACE_URL, "urn:baylink:subscription")
_SUBSCRIPTION_INDEX_ID = uuid5(NAMESPACE_URL, "urn:baylink:subscription-index")
_SUBSCRIPTION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
# Kafka's own limit on topic names: 249 characters of ASCII letters, digits, '.', '_', '-'.
_KAFKA_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
MAX_WEBHOOK_URL = 2048


class Channel(StrEnum):
    KAFKA = "kafka"
    SSE = "sse"
    WEBSOCKET = "websocket"
    WEBHOOK = "webhook"


class SubscriptionState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DEAD_LETTERED = "dead-lettered"


def delivery_topic(partner_id: str, dataset_id: str) -> str:
    """The Kafka topic a partner's records of one dataset are delivered to."""
    topic = f"baylink.deliver.{partner_id}.{dataset_id}.v1"
    if not _KAFKA_TOPIC.match(topic):
        raise SubscriptionTermsError(
            f"{partner_id!r} and {dataset_id!r} do not make a valid Kafka topic name ({topic!r})"
        )
    return topic


def check_webhook_url(url: str) -> str:
    """The URL if a webhook may be sent to it: http(s), a host, no user info or fragment."""
    if len(url) > MAX_WEBHOOK_URL:
        raise SubscriptionTermsError(f"webhook_url: longer than {MAX_WEBHOOK_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise SubscriptionTermsError(f"webhook_url: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise SubscriptionTermsError(f"webhook_url: expected http or https, got {url!r}")
    if not parts.hostname:
        raise SubscriptionTermsError(f"webhook_url: no host in {url!r}")
    # Credentials in the URL would be stored in events and shown in listings.
    if parts.username is not None or parts.password is not None:
        raise SubscriptionTermsError("webhook_url: must not carry a user name or password")
    if parts.fragment:
        raise SubscriptionTermsError(f"webhook_url: must not carry a fragment, got {url!r}")
    if port == 0:
        raise SubscriptionTermsError(f"webhook_url: port 0 in {url!r}")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise SubscriptionTermsError("webhook_url: must not contain spaces or control characters")
    return url


@dataclass(frozen=True, slots=True)
class SubscriptionTerms:
    """What is delivered to whom and how; ``start_position`` is the first notification-log
    position considered (1 delivers the dataset's whole history the agreement reaches)."""

    subscription_id: str
    partner_id: str
    dataset_id: str
    agreement_id: str
    channel: Channel
    webhook_url: str | None = None
    start_position: int = 1

    def __post_init__(self) -> None:
        where = f"subscription {self.subscription_id!r}"
        if not _SUBSCRIPTION_ID.match(self.subscription_id):
            raise SubscriptionTermsError(
                f"{where}: a subscription id is 1-80 letters, digits, '.', '_', '-'"
            )
        for name in ("partner_id", "dataset_id", "agreement_id"):
            if not getattr(self, name).strip():
                raise SubscriptionTermsError(f"{where}: {name} is required")
        if self.start_position < 1:
            raise SubscriptionTermsError(f"{where}: start_position must be 1 or more")
        if self.channel is Channel.WEBHOOK:
            if self.webhook_url is None:
                raise SubscriptionTermsError(f"{where}: a webhook subscription needs webhook_url")
            check_webhook_url(self.webhook_url)
        elif self.webhook_url is not None:
            raise SubscriptionTermsError(
                f"{where}: webhook_url is only for the webhook channel, not {self.channel.value}"
            )
        if self.channel is Channel.KAFKA:
            delivery_topic(self.partner_id, self.dataset_id)

    @property
    def topic(self) -> str | None:
        """The delivery topic of a Kafka subscription."""
        if self.channel is not Channel.KAFKA:
            return None
        return delivery_topic(self.partner_id, self.dataset_id)

    def as_dict(self) -> dict[str, Any]:
        return {
            "subscription_id": self.subscription_id,
            "partner_id": self.partner_id,
            "dataset_id": self.dataset_id,
            "agreement_id": self.agreement_id,
            "channel": self.channel.value,
            "webhook_url": self.webhook_url,
            "start_position": self.start_position,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SubscriptionTerms:
        try:
            channel = Channel(str(raw["channel"]))
        except KeyError as missing:
            raise SubscriptionTermsError(f"subscription: {missing.args[0]} is required") from None
        except ValueError:
            known = ", ".join(c.value for c in Channel)
            raise SubscriptionTermsError(
                f"subscription: unknown channel {raw['channel']!r} (one of {known})"
            ) from None
        try:
            url = raw.get("webhook_url")
            return cls(
                subscription_id=str(raw["subscription_id"]),
                partner_id=str(raw["partner_id"]),
                dataset_id=str(raw["dataset_id"]),
                agreement_id=str(raw["agreement_id"]),
                channel=channel,
                webhook_url=None if url is None else str(url),
                start_position=int(raw.get("start_position", 1)),
            )
        except KeyError as missing:
            raise SubscriptionTermsError(f"subscription: {missing.args[0]} is required") from None


class Subscription(Aggregate):
    """One subscription's terms and state, and the webhook secret's version."""

    @staticmethod
    def create_id(subscription_id: str) -> UUID:
        return uuid5(_SUBSCRIPTION_NAMESPACE, subscription_id)

    @event("Created")
    def __init__(self, subscription_id: str, terms: dict[str, Any], created_by: str) -> None:
        self.subscription_id = subscription_id
        self.terms_dict = terms
        self.state = SubscriptionState.ACTIVE
        self.secret_version = 1
        self.dead_letter_position: int | None = None
        self.dead_letter_attempts = 0
        self.history: list[tuple[str, str, str]] = [
            (SubscriptionState.ACTIVE.value, created_by, "")
        ]

    @property
    def terms(self) -> SubscriptionTerms:
        return SubscriptionTerms.from_dict(self.terms_dict)

    def _require(self, action: str, *allowed: SubscriptionState) -> None:
        if self.state not in allowed:
            raise SubscriptionStateError(
                f"subscription {self.subscription_id!r} is {self.state.value}: cannot {action} "
                f"it (only when {' or '.join(s.value for s in allowed)})"
            )

    def pause(self, by: str, reason: str) -> None:
        self._require("pause", SubscriptionState.ACTIVE)
        self._paused(by, reason)

    @event("Paused")
    def _paused(self, by: str, reason: str) -> None:
        self._enter(SubscriptionState.PAUSED, by, reason)

    def resume(self, by: str) -> None:
        self._require("resume", SubscriptionState.PAUSED)
        self._resumed(by)

    @event("Resumed")
    def _resumed(self, by: str) -> None:
        self._enter(SubscriptionState.ACTIVE, by, "")

    def cancel(self, by: str, reason: str) -> None:
        self._require(
            "cancel",
            SubscriptionState.ACTIVE,
            SubscriptionState.PAUSED,
            SubscriptionState.DEAD_LETTERED,
        )
        self._cancelled(by, reason)

    @event("Cancelled")
    def _cancelled(self, by: str, reason: str) -> None:
        self._enter(SubscriptionState.CANCELLED, by, reason)

    def dead_letter(self, position: int, attempts: int, reason: str) -> None:
        """The relay gave up on the record at ``position`` after ``attempts`` tries."""
        if self.terms.channel is not Channel.WEBHOOK:
            raise SubscriptionStateError(
                f"subscription {self.subscription_id!r}: only webhooks are dead-lettered"
            )
        self._require("dead-letter", SubscriptionState.ACTIVE)
        self._dead_lettered(position, attempts, reason)

    @event("DeadLettered")
    def _dead_lettered(self, position: int, attempts: int, reason: str) -> None:
        self.dead_letter_position = position
        self.dead_letter_attempts = attempts
        self._enter(SubscriptionState.DEAD_LETTERED, "relay", reason)

    def redrive(self, by: str) -> None:
        """Deliver again from the record that was dead-lettered."""
        self._require("redrive", SubscriptionState.DEAD_LETTERED)
        self._redriven(by)

    @event("Redriven")
    def _redriven(self, by: str) -> None:
        self._enter(SubscriptionState.ACTIVE, by, "")

    def rotate_secret(self, by: str) -> int:
        if self.terms.channel is not Channel.WEBHOOK:
            raise SubscriptionStateError(
                f"subscription {self.subscription_id!r}: only webhooks have a signing secret"
            )
        self._require(
            "rotate the secret of",
            SubscriptionState.ACTIVE,
            SubscriptionState.PAUSED,
            SubscriptionState.DEAD_LETTERED,
        )
        self._secret_rotated(by)
        return self.secret_version

    @event("SecretRotated")
    def _secret_rotated(self, by: str) -> None:
        self.secret_version += 1
        self.history.append(("secret-rotated", by, ""))

    def _enter(self, state: SubscriptionState, by: str, reason: str) -> None:
        self.state = state
        self.history.append((state.value, by, reason))


class SubscriptionIndex(Aggregate):
    """Every subscription id, so they can be listed without scanning the store."""

    @staticmethod
    def create_id() -> UUID:
        return _SUBSCRIPTION_INDEX_ID

    @event("Created")
    def __init__(self) -> None:
        self.subscription_ids: list[str] = []

    @event("SubscriptionAdded")
    def add(self, subscription_id: str) -> None:
        self.subscription_ids.append(subscription_id)
