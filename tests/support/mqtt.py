"""Publishing to the running Mosquitto in tests, and forgetting the sessions tests leave there."""

from __future__ import annotations

import paho.mqtt.client as paho
from paho.mqtt import publish
from paho.mqtt.enums import CallbackAPIVersion

HOST, PORT = "127.0.0.1", 1883


def publish_qos1(topic: str, *payloads: bytes) -> None:
    publish.multiple(
        [{"topic": topic, "payload": payload, "qos": 1} for payload in payloads],
        hostname=HOST,
        port=PORT,
    )


def forget_session(client_id: str) -> None:
    """Connect once with a clean session, which makes the broker drop the stored one."""
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True
    )
    client.connect(HOST, PORT)
    client.loop(timeout=2)  # reads the CONNACK: the broker has dropped the session by then
    client.disconnect()
