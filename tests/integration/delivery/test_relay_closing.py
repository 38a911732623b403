"""Closing a relay whose run was cancelled mid store call waits for that call: the store is
never closed beneath a query still running in a thread (which crashes a SQLite process)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from storage.subscriptions import SubscriptionInfo
from streams.delivery_relay import DeliveryRelay, RelaySettings
from tests.integration.api.governed import GovernedStore

pytestmark = pytest.mark.integration


async def test_closing_waits_for_a_store_call_its_cancelled_run_left_running(
    event_store_url: str, governed: GovernedStore
) -> None:
    relay = DeliveryRelay(event_store_url, b"secret", {}, RelaySettings(poll_seconds=0.05))
    listing = relay.subscriptions.subscriptions
    started, order = threading.Event(), []

    def slow_listing(
        partner_id: str | None = None, dataset_id: str | None = None
    ) -> list[SubscriptionInfo]:
        started.set()
        time.sleep(0.5)
        found = listing(partner_id, dataset_id)
        order.append("query ended")
        return found

    relay.subscriptions.subscriptions = slow_listing  # type: ignore[method-assign]
    running = asyncio.create_task(relay.run(asyncio.Event()))
    await asyncio.to_thread(started.wait, 10)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

    relay.close()
    order.append("closed")

    assert order == ["query ended", "closed"]
