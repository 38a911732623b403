"""The subscriptions application: partners' live subscriptions and their lifecycle.

A subscription is taken out under the agreement the policy finds for the partner and the
dataset at that moment; delivery checks the policy again for every record, so an agreement
suspended, revoked or cut by the whitelist stops delivery whatever the subscription says.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from eventsourcing.application import AggregateNotFoundError

from domain.dataset import DatasetDefinition
from domain.errors import SubscriptionNotFoundError, SubscriptionTermsError
from domain.policy import Caller, DecisionReason
from domain.subscription import (
    Channel,
    Subscription,
    SubscriptionIndex,
    SubscriptionState,
    SubscriptionTerms,
)
from storage.governance import Governance
from storage.ledger import LedgerApplication

WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret


@dataclass(frozen=True, slots=True)
class SubscriptionInfo:
    terms: SubscriptionTerms
    state: SubscriptionState
    secret_version: int
    dead_letter_position: int | None
    dead_letter_attempts: int
    history: tuple[tuple[str, str, str], ...]


def webhook_secret(platform_secret: bytes, subscription_id: str, version: int) -> str:
    """The secret a webhook's deliveries are signed with, derived rather than stored so that
    the event history an auditor replays holds no signing key."""
    digest = hmac.new(
        platform_secret, f"webhook:{subscription_id}:{version}".encode(), hashlib.sha256
    ).digest()
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(digest).decode()


class Subscriptions(LedgerApplication):
    """Use cases of subscriptions; the Governance application decides entitlement."""

    def subscribe(
        self,
        governance: Governance,
        caller: Caller,
        dataset: DatasetDefinition,
        channel: Channel,
        by: str,
        *,
        webhook_url: str | None = None,
        start_position: int = 1,
        at: datetime | None = None,
        new_id: Callable[[], str] = lambda: f"sub-{secrets.token_hex(8)}",
    ) -> SubscriptionInfo:
        """Subscribe ``caller`` (a partner) to ``dataset`` under its active agreement."""
        if caller.partner_id is None:
            raise SubscriptionTermsError("only a partner subscribes; name the partner")
        decision = governance.decide(caller, dataset, at or datetime.now(UTC))
        if not decision.allowed or decision.reason is not DecisionReason.AGREEMENT:
            raise SubscriptionTermsError(
                f"partner {caller.partner_id!r} has no active agreement that grants "
                f"{dataset.id}: {decision.message}"
            )
        assert decision.agreement_id is not None
        if channel is Channel.KAFKA:
            self._refuse_second_topic_subscriber(caller.partner_id, dataset.id)
        index = self._index()
        subscription_id = new_id()
        if subscription_id in index.subscription_ids:
            raise SubscriptionTermsError(f"subscription {subscription_id!r} exists already")
        terms = SubscriptionTerms(
            subscription_id=subscription_id,
            partner_id=caller.partner_id,
            dataset_id=dataset.id,
            agreement_id=decision.agreement_id,
            channel=channel,
            webhook_url=webhook_url,
            start_position=start_position,
        )
        subscription = Subscription(subscription_id, terms.as_dict(), by)
        index.add(subscription_id)
        self.save(subscription, index)
        return self.subscription(subscription_id)

    def subscription(self, subscription_id: str) -> SubscriptionInfo:
        s = self._subscription(subscription_id)
        return SubscriptionInfo(
            s.terms,
            s.state,
            s.secret_version,
            s.dead_letter_position,
            s.dead_letter_attempts,
            tuple((state, by, reason) for state, by, reason in s.history),
        )

    def subscriptions(
        self, partner_id: str | None = None, dataset_id: str | None = None
    ) -> list[SubscriptionInfo]:
        infos = [self.subscription(sid) for sid in self._index().subscription_ids]
        return [
            info
            for info in infos
            if (partner_id is None or info.terms.partner_id == partner_id)
            and (dataset_id is None or info.terms.dataset_id == dataset_id)
        ]

    def pause(self, subscription_id: str, by: str, reason: str) -> SubscriptionInfo:
        return self._change(subscription_id, lambda s: s.pause(by, reason))

    def resume(self, subscription_id: str, by: str) -> SubscriptionInfo:
        return self._change(subscription_id, lambda s: s.resume(by))

    def cancel(self, subscription_id: str, by: str, reason: str) -> SubscriptionInfo:
        return self._change(subscription_id, lambda s: s.cancel(by, reason))

    def dead_letter(
        self, subscription_id: str, position: int, attempts: int, reason: str
    ) -> SubscriptionInfo:
        return self._change(subscription_id, lambda s: s.dead_letter(position, attempts, reason))

    def redrive(self, subscription_id: str, by: str) -> SubscriptionInfo:
        return self._change(subscription_id, lambda s: s.redrive(by))

    def rotate_secret(self, subscription_id: str, by: str) -> SubscriptionInfo:
        return self._change(subscription_id, lambda s: s.rotate_secret(by))

    def _refuse_second_topic_subscriber(self, partner_id: str, dataset_id: str) -> None:
        # A partner's records of a dataset have one topic: a second subscription would
        # deliver every record to it twice.
        for info in self.subscriptions(partner_id, dataset_id):
            if (
                info.terms.channel is Channel.KAFKA
                and info.state is not SubscriptionState.CANCELLED
            ):
                raise SubscriptionTermsError(
                    f"partner {partner_id!r} already receives {dataset_id} on "
                    f"{info.terms.topic} ({info.terms.subscription_id})"
                )

    def _change(
        self, subscription_id: str, change: Callable[[Subscription], object]
    ) -> SubscriptionInfo:
        subscription = self._subscription(subscription_id)
        change(subscription)
        self.save(subscription)
        return self.subscription(subscription_id)

    def _subscription(self, subscription_id: str) -> Subscription:
        try:
            subscription: Subscription = self.repository.get(
                Subscription.create_id(subscription_id)
            )
        except AggregateNotFoundError:
            raise SubscriptionNotFoundError(f"no subscription {subscription_id!r}") from None
        return subscription

    def _index(self) -> SubscriptionIndex:
        try:
            index: SubscriptionIndex = self.repository.get(SubscriptionIndex.create_id())
        except AggregateNotFoundError:
            return SubscriptionIndex()
        return index
