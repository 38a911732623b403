"""Running the delivery relay as a process: Kafka and webhook channels until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from domain.subscription import Channel
from streams.delivery_relay import DeliveryChannel, DeliveryRelay, KafkaChannel, RelaySettings
from streams.webhook_channel import WebhookChannel

log = logging.getLogger("baylink.streams.delivery")


async def relay_until_stopped(
    event_store_url: str,
    bootstrap_servers: str,
    platform_secret: bytes,
    settings: RelaySettings | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Deliver Kafka and webhook subscriptions until ``stop`` is set or SIGTERM/SIGINT."""
    settings = settings or RelaySettings()
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
    kafka = KafkaChannel(bootstrap_servers, settings.delivery_partitions)
    webhooks = WebhookChannel(platform_secret, private_networks=settings.webhook_private_networks)
    await kafka.start()
    channels: dict[Channel, DeliveryChannel] = {Channel.KAFKA: kafka, Channel.WEBHOOK: webhooks}
    relay = DeliveryRelay(event_store_url, platform_secret, channels, settings)
    log.info("delivery relay following %s, delivering to %s", event_store_url, bootstrap_servers)
    try:
        await relay.run(stop)
    finally:
        await kafka.stop()
        await webhooks.close()
        relay.close()
