"""Webhook delivery: a page of records POSTed as a CloudEvents JSON batch, signed the Standard
Webhooks way (HMAC-SHA256 over id, timestamp and body), so a receiver can check who sent it
and refuse a replay outside its tolerance window.

The message id is a digest of the page's content: a retry of the same page carries the same
id, a different page never does. Every event in the batch also carries its record id, so a
receiver that saw part of a page before a failure recognises what it already has.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook

from storage.delivery_feed import Delivered
from storage.subscriptions import SubscriptionInfo, webhook_secret
from streams.webhook_network import webhook_client

BATCH_MEDIA_TYPE = "application/cloudevents-batch+json"


class WebhookRefusedError(Exception):
    """The receiver did not take the page: its status or the network error, in one line."""


def message_id(subscription_id: str, delivered: Sequence[Delivered]) -> str:
    digest = hashlib.sha256(
        "\n".join(f"{d.position}:{d.record_id}" for d in delivered).encode()
    ).hexdigest()
    return f"msg_{subscription_id}_{digest[:32]}"


def batch_body(delivered: Sequence[Delivered]) -> str:
    return "[" + ",".join(d.json().decode() for d in delivered) + "]"


class WebhookChannel:
    """POSTs pages to each subscription's URL; 2xx is the acknowledgement."""

    def __init__(
        self,
        platform_secret: bytes,
        client: httpx.AsyncClient | None = None,
        timeout_seconds: float = 10.0,
        *,
        private_networks: bool = False,
    ) -> None:
        self._secret = platform_secret
        self._client = client or webhook_client(timeout_seconds, private_networks)

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, subscription: SubscriptionInfo, delivered: Sequence[Delivered]) -> None:
        terms = subscription.terms
        assert terms.webhook_url is not None
        body = batch_body(delivered)
        msg_id = message_id(terms.subscription_id, delivered)
        now = datetime.now(UTC)
        signer = Webhook(
            webhook_secret(self._secret, terms.subscription_id, subscription.secret_version)
        )
        headers = {
            "content-type": BATCH_MEDIA_TYPE,
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(msg_id, now, body),
        }
        host = urlsplit(terms.webhook_url).hostname
        try:
            response = await self._client.post(
                terms.webhook_url, content=body.encode(), headers=headers
            )
        except httpx.HTTPError as error:
            raise WebhookRefusedError(
                f"{type(error).__name__} posting to {host}: {error}"
            ) from None
        if not response.is_success:
            raise WebhookRefusedError(f"HTTP {response.status_code} from {host}")


def events_of(body: bytes) -> list[dict[str, object]]:
    """The CloudEvents of a batch body, for receivers and tests."""
    events: list[dict[str, object]] = json.loads(body)
    return events
