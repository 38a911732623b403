"""An MQTT subscription at QoS 1 on a persistent session, acknowledged by the caller.

The client connects with a stable client id and ``clean_session=False``, so the broker keeps
the subscription and queues QoS 1 messages while the connector is down, and delivers them
when it reconnects. Acknowledgements are manual: the caller acks a message only after its
records are safely published, so a message in hand when the connector stops is delivered
again (at least once; the event store drops records it already holds).

paho-mqtt runs its network loop in a thread of its own; messages cross into asyncio through
``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from connectors.errors import PayloadError, SourceError
from connectors.source import FetchedPayload

log = logging.getLogger("baylink.connectors.mqtt")
QOS_AT_LEAST_ONCE = 1


@dataclass(frozen=True, slots=True)
class MqttMessage:
    """One message as received; ``error`` when it is refused (e.g. too large) before parsing."""

    topic: str
    payload: FetchedPayload
    mid: int
    qos: int
    redelivered: bool
    error: PayloadError | None = None
    connection: int = 0


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    host: str
    port: int
    topic: str
    client_id: str
    username: str | None = None
    password: str | None = None


class MqttSubscription:
    """``start``, then take messages (``next_message`` or ``messages()``) and ``ack`` each
    once it is published; ``stop`` leaves the unacked ones with the broker."""

    def __init__(
        self, endpoint: MqttEndpoint, *, max_bytes: int, connect_timeout: float = 10.0
    ) -> None:
        self.endpoint = endpoint
        self.max_bytes = max_bytes
        self.connect_timeout = connect_timeout
        self._queue: asyncio.Queue[MqttMessage] = asyncio.Queue()
        self._subscribed = asyncio.Event()
        self._failure: str | None = None  # the last refused connection, while retrying
        self._refused: str | None = None  # a refused subscription: retrying will not help
        self._loop: asyncio.AbstractEventLoop | None = None
        # Packet ids are per connection: a message received before a reconnect must not be
        # acked by its old id, which may now name another message. The broker resends it.
        self._connection = 0
        self._client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=endpoint.client_id,
            clean_session=False,
            protocol=paho.MQTTv311,
            manual_ack=True,
        )
        if endpoint.username is not None:
            self._client.username_pw_set(endpoint.username, endpoint.password)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect

    @property
    def uri(self) -> str:
        return f"mqtt://{self.endpoint.host}:{self.endpoint.port}/{self.endpoint.topic}"

    async def start(self) -> None:
        """Connect and subscribe; raises SourceError when the broker does not accept us."""
        self._loop = asyncio.get_running_loop()
        try:
            self._client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=30)
        except (OSError, ValueError) as error:
            raise SourceError(f"cannot connect to {self.uri}: {error}") from None
        self._client.loop_start()
        try:
            await asyncio.wait_for(self._subscribed.wait(), self.connect_timeout)
        except TimeoutError:
            await self.stop()
            why = self._failure or "no answer"
            raise SourceError(
                f"cannot subscribe to {self.uri} within {self.connect_timeout:.0f}s: {why}"
            ) from None
        if self._refused is not None:
            await self.stop()
            raise SourceError(f"cannot subscribe to {self.uri}: {self._refused}")

    async def messages(self) -> AsyncIterator[MqttMessage]:
        while True:
            yield await self.next_message()

    async def next_message(self) -> MqttMessage:
        """The next message received; cancelling the wait loses none."""
        return await self._queue.get()

    def ack(self, message: MqttMessage) -> None:
        """Acknowledge one message: the broker forgets it (call after it is published)."""
        if message.connection == self._connection:
            self._client.ack(message.mid, message.qos)

    async def stop(self) -> None:
        """Disconnect without acknowledging what is still in hand; the broker keeps it."""
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    # paho's callbacks, on its network thread.

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        _properties: Any,
    ) -> None:
        if reason.is_failure:
            self._failure = f"broker refused the connection: {reason}"
            log.warning("mqtt %s: %s", self.uri, self._failure)
            return
        self._connection += 1
        # The session keeps the subscription, but subscribing again is harmless and covers a
        # broker that lost its sessions.
        client.subscribe(self.endpoint.topic, qos=QOS_AT_LEAST_ONCE)
        if flags.session_present:
            log.info("mqtt %s: resumed the persistent session", self.uri)

    def _on_subscribe(
        self,
        _client: paho.Client,
        _userdata: Any,
        _mid: int,
        reasons: list[ReasonCode],
        _properties: Any,
    ) -> None:
        if any(reason.is_failure for reason in reasons):
            self._refused = f"broker refused the subscription: {reasons[0]}"
        self._threadsafe(self._subscribed.set)

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: Any,
        _flags: paho.DisconnectFlags,
        reason: ReasonCode,
        _properties: Any,
    ) -> None:
        if reason.is_failure:
            log.warning("mqtt %s: disconnected (%s); reconnecting", self.uri, reason)

    def _on_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        data = bytes(msg.payload)
        error = None
        if len(data) > self.max_bytes:
            error = PayloadError(
                "too-large",
                f"message on {msg.topic} holds {len(data)} bytes; the limit is "
                f"{self.max_bytes} bytes",
            )
        uri = f"mqtt://{self.endpoint.host}:{self.endpoint.port}/{msg.topic}"
        message = MqttMessage(
            topic=msg.topic,
            payload=FetchedPayload(uri=uri, data=data, received_at=datetime.now(UTC)),
            mid=msg.mid,
            qos=msg.qos,
            redelivered=bool(msg.dup),
            error=error,
            connection=self._connection,
        )
        self._threadsafe(self._queue.put_nowait, message)

    def _threadsafe(self, callback: Any, *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(callback, *args)
